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
    dashboard = cfg["DASHBOARD_PATH"]
    if dashboard is not None and (not isinstance(dashboard, str) or not dashboard.strip("/")
                                  or (isinstance(apps, dict) and "/" + dashboard.strip("/") in apps)):
        problems.append(Error(f"BOKEHSERVER['DASHBOARD_PATH'] {dashboard!r} must be a path of its own, not an app's",
                              hint='e.g. "/bokehserver-dashboard", or None for no dashboard', id="bokehserver.E030"))
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


@register()
def check_apps_load(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """An app that cannot be loaded is served as an error page; say so before the first visitor does."""
    from .registry import spec_problem

    apps = conf.get("APPS")
    if not isinstance(apps, dict):
        return []
    return [
        Error(f"Bokeh app {route!r} cannot be loaded: {problem}", obj=route, id="bokehserver.E004",
              hint="Fix the app, or its path or dotted name in BOKEHSERVER['APPS']")
        for route, problem in ((route, spec_problem(spec)) for route, spec in apps.items())
        if problem is not None
    ]


@register()
def check_websocket_route(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """A site whose ASGI application routes no websockets serves pages that never connect."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not dotted:
        return []
    try:
        application = import_string(dotted)
    except Exception as exc:
        return [Error(f"ASGI_APPLICATION {dotted!r} cannot be imported: {exc}", id="bokehserver.E005",
                      hint="Point ASGI_APPLICATION at the application your asgi.py builds")]
    mapping = getattr(application, "application_mapping", None)
    if getattr(application, "bokehserver", False) or (mapping is not None and "websocket" in mapping):
        return []
    return [Warning(
        f"ASGI_APPLICATION {dotted!r} routes no websockets: Bokeh pages load but never connect",
        hint="Build it with bokehserver.asgi.bokeh_asgi_application(get_asgi_application())",
        id="bokehserver.W011",
    )]


@register(deploy=True)
def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """``check --deploy``: unsigned sessions, and a channel layer that one process cannot share."""
    import os

    from django.conf import settings

    problems: list[Any] = []
    sign = conf.get("SIGN_SESSIONS")
    if sign is None and "BOKEH_SIGN_SESSIONS" in os.environ:
        sign = os.environ["BOKEH_SIGN_SESSIONS"].lower() in ("1", "true", "yes", "on")
    restricted = bool(conf.get("LOGIN_REQUIRED")) or bool(conf.get("ACCESS"))
    if not sign and not (sign is None and restricted):
        problems.append(Warning(
            "Bokeh session ids and tokens are not signed: anyone who learns a session id can open that session",
            hint="Set BOKEHSERVER['SIGN_SESSIONS'] = True (signed with BOKEHSERVER['SECRET_KEY'] or the site's SECRET_KEY)",
            id="bokehserver.W020",
        ))
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    backend = str(layers.get("default", {}).get("BACKEND", ""))
    if not backend or backend.endswith("InMemoryChannelLayer"):
        problems.append(Warning(
            "No channel layer shared between processes: admin actions and logouts reach only the process they "
            "happen in",
            hint="With more than one server process, use Redis: pip install 'bokehserver[redis]' and "
                 "channels_redis.core.RedisChannelLayer",
            id="bokehserver.W021",
        ))
    else:
        problems.extend(_unreachable_redis(layers))
    return problems


def _unreachable_redis(layers: dict[str, Any]) -> list[Any]:
    import socket
    from urllib.parse import urlsplit

    problems: list[Any] = []
    for alias, layer in layers.items():
        if "channels_redis" not in str(layer.get("BACKEND", "")):
            continue
        for host in (layer.get("CONFIG") or {}).get("hosts") or ["redis://localhost:6379"]:
            if isinstance(host, dict):
                host = host.get("address") or (host.get("host", "localhost"), host.get("port", 6379))
            if isinstance(host, str):
                parts = urlsplit(host)
                if parts.scheme == "unix":
                    continue
                address = (parts.hostname or "localhost", parts.port or 6379)
            else:
                address = (host[0], int(host[1]))
            try:
                socket.create_connection(address, timeout=2).close()
            except OSError as exc:
                problems.append(Warning(
                    f"CHANNEL_LAYERS[{alias!r}] cannot reach Redis at {address[0]}:{address[1]}: {exc}",
                    hint="Start Redis or fix the host; until then sessions stay unreachable from other processes",
                    obj=alias, id="bokehserver.W022",
                ))
    return problems


@register()
def check_staticfiles(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """With staticfiles, BokehJS should be one of the site's static files (else it claims ``<prefix>/static/``)."""
    from django.apps import apps

    from .staticfiles import FINDER, uses_staticfiles

    if not apps.is_installed("django.contrib.staticfiles") or uses_staticfiles():
        return []
    return [Warning(
        "BokehJS is not among the site's static files: pages load it from bokeh serve's <prefix>/static/ URLs, "
        "which runserver's static files handler answers with 404 when they fall under STATIC_URL",
        hint=f'Add "{FINDER}" to STATICFILES_FINDERS (after Django\'s two default finders)',
        id="bokehserver.W002",
    )]
