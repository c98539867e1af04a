"""System checks: misconfiguration is reported at startup with a stable id and a hint."""
from __future__ import annotations

from typing import Any

from django.core.checks import Error, Warning, register

from . import conf


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    cfg = conf.get_config()
    if cfg["_unknown"]:
        problems.append(Warning(
            f"Unknown BOKEHSERVER keys: {', '.join(cfg['_unknown'])}",
            hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}",
            id="bokehserver.W001",
        ))
    apps = cfg["APPS"]
    if not isinstance(apps, dict):
        problems.append(Error("BOKEHSERVER['APPS'] must be a dict of URL path to app", id="bokehserver.E001",
                              hint='e.g. {"/sliders": "examples/sliders.py"}'))
    else:
        for route in apps:
            if not isinstance(route, str) or not route.startswith("/"):
                problems.append(Error(f"App path {route!r} must be a string starting with '/'",
                                      hint="Use keys like '/sliders'", id="bokehserver.E002"))
    if cfg["SIGN_SESSIONS"] and not cfg["SECRET_KEY"]:
        import os

        if not os.environ.get("BOKEH_SECRET_KEY"):
            problems.append(Error("Signed sessions need a secret key", id="bokehserver.E003",
                                  hint="Set BOKEHSERVER['SECRET_KEY'] or the BOKEH_SECRET_KEY environment variable"))
    return problems


# channels-redis waits for a message with a blocking pop of this many seconds.
_REDIS_BLOCKING_POP_SECONDS = 5


def _redis_py_default_socket_timeout() -> float | None:
    """redis-py 8 gives every connection a 5 s socket timeout; before 8 there was none."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = int(version("redis").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return None
    return 5.0 if major >= 8 else None


@register()
def check_redis_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """A Redis socket timeout no longer than channels-redis's blocking pop breaks every receive.

    The receive then fails every few seconds, and a message popped as the socket gives up is lost:
    cross-process admin actions go missing. Each host needs a longer ``socket_timeout``.
    """
    from django.conf import settings

    problems: list[Any] = []
    for alias, layer in (getattr(settings, "CHANNEL_LAYERS", None) or {}).items():
        if "channels_redis" not in str(layer.get("BACKEND", "")):
            continue
        for host in (layer.get("CONFIG") or {}).get("hosts") or ["redis://localhost:6379"]:
            if isinstance(host, dict) and "socket_timeout" in host:
                timeout = host["socket_timeout"]
            else:
                timeout = _redis_py_default_socket_timeout()
            if timeout is not None and timeout <= _REDIS_BLOCKING_POP_SECONDS:
                problems.append(Warning(
                    f"CHANNEL_LAYERS[{alias!r}] reaches Redis with a {timeout:g} s socket timeout, no longer than "
                    f"channels-redis's {_REDIS_BLOCKING_POP_SECONDS} s blocking receive: receives fail and "
                    "messages between server processes can be lost",
                    hint='Give each host a longer timeout: "hosts": [{"address": "redis://...", "socket_timeout": 30}]',
                    obj=alias,
                    id="bokehserver.W010",
                ))
    return problems
