"""The process a ``Server`` runs in: its Django settings, listening socket and children."""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ("bind_socket", "ensure_django", "minimal_django_settings", "supervise")

LISTEN_BACKLOG = 128
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def minimal_django_settings() -> dict[str, Any]:
    """The settings a plain script gets: bokehserver's URLconf, in-memory channels, no database.

    Nothing of bokehserver needs the database unless session records or logins are asked for.
    """
    return {
        "DEBUG": False,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": ["*"],
        # the views import django.contrib.auth (login_required), whose models need contenttypes
        "INSTALLED_APPS": ["django.contrib.contenttypes", "django.contrib.auth", "channels", "bokehserver"],
        "ROOT_URLCONF": "bokehserver.urls",
        "TEMPLATES": [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        "CHANNEL_LAYERS": {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        "USE_TZ": True,
        "BOKEHSERVER": {"RECORD_INTERVAL_MILLISECONDS": 0},
    }


def ensure_django() -> bool:
    """Use the project's Django settings, or configure :func:`minimal_django_settings` when there are none.

    Returns whether the minimal settings were configured.
    """
    import django
    from django.apps import apps
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    minimal = not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE")
    if minimal:
        settings.configure(**minimal_django_settings())
    if not apps.ready:
        django.setup()
    if not apps.is_installed("bokehserver"):
        raise ImproperlyConfigured("Server needs 'bokehserver' (and 'channels') in INSTALLED_APPS")
    return minimal


def bind_socket(address: str | None, port: int) -> socket.socket:
    """A listening, non-blocking socket on ``address`` (all IPv4 interfaces when None)."""
    host = address or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f"Cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, sockaddr = sorted(infos, key=lambda info: info[0] != socket.AF_INET)[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"Cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def supervise(children: dict[int, int], signal_mask: set[signal.Signals]) -> int:
    """Forward SIGINT/SIGTERM to the children and wait for them all; return the parent's exit code.

    The signals are blocked while forking; ``signal_mask`` is the mask to restore once forwarding is in place.
    """

    def forward(signum: int, frame: Any) -> None:
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in SHUTDOWN_SIGNALS}
    signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
    failures = 0
    try:
        while children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            index = children.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code:
                failures += 1
                logger.error("Bokeh server process %d (pid %d) exited with code %d", index, pid, code)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failures else 0
