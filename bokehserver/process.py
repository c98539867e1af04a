"""The process a ``Server`` runs in: its Django settings, listening socket and children."""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from typing import Any

from .layers import forget_inherited_layers

logger = logging.getLogger(__name__)

__all__ = ("bind_socket", "ensure_django", "fork_workers", "minimal_django_settings", "worker_group")

LISTEN_BACKLOG = 128
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# a worker that dies sooner than this after its start is failing at start: restarts wait a second,
# and stop after this many in a row
QUICK_EXIT_SECONDS, MAX_QUICK_EXITS, RESTART_DELAY_SECONDS = 5.0, 5, 1.0
# names the workers one fork_workers call forks (restarted ones too), inherited over fork
_worker_group: str | None = None


def worker_group() -> str | None:
    """The name shared by this process and its sibling workers (None: not a forked worker)."""
    return _worker_group


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


def fork_workers(count: int) -> int:
    """Fork ``count`` worker processes and return, in each, its index (0 to count - 1).

    The parent never returns: it forwards SIGINT/SIGTERM to the workers, forks a new worker in
    place of one that dies (a crash, SIGKILL, the OOM killer) and exits once all have ended, with
    1 if any failed. A worker that keeps dying within ``QUICK_EXIT_SECONDS`` of its start is given
    up after ``MAX_QUICK_EXITS`` tries, so a broken app does not fork forever.
    """
    global _worker_group
    _worker_group = secrets.token_hex(8)
    children: dict[int, int] = {}
    started: dict[int, float] = {}
    quick_exits: dict[int, int] = {}
    stopping = False

    def forward(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
    previous = {sig: signal.signal(sig, forward) for sig in SHUTDOWN_SIGNALS}

    def spawn(index: int) -> bool:
        """Fork worker ``index`` with the shutdown signals blocked; True in the new worker."""
        signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
        try:
            pid = os.fork()
        except OSError:
            forward(signal.SIGTERM, None)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            forget_inherited_layers()
            logger.debug("Bokeh server process %d started (pid %d)", index, os.getpid())
            return True
        children[pid] = index
        started[index] = time.monotonic()
        return False

    for index in range(count):
        if spawn(index):
            return index
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    lost = 0  # workers that failed and were not replaced
    while children:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if not code:
            continue
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if stopping:
            logger.error("Bokeh server process %d (pid %d) %s", index, pid, how)
            lost += 1
            continue
        quick = time.monotonic() - started[index] < QUICK_EXIT_SECONDS
        quick_exits[index] = quick_exits.get(index, 0) + 1 if quick else 0
        if quick_exits[index] > MAX_QUICK_EXITS:
            logger.error("Bokeh server process %d (pid %d) %s; it keeps failing at start, not restarting it",
                         index, pid, how)
            lost += 1
            continue
        logger.error("Bokeh server process %d (pid %d) %s; starting a new one", index, pid, how)
        if quick:
            time.sleep(RESTART_DELAY_SECONDS)
        if stopping:
            lost += 1
            continue
        if spawn(index):
            return index
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    sys.exit(1 if lost else 0)
