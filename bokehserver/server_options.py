"""The web application's options: from ``Server``'s arguments (bokeh's option names, clear errors for
what is not offered) and from ``settings.BOKEHSERVER``."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from bokeh.settings import settings as bokeh_settings

from . import registry
from .origins import create_hosts_allowlist

# Options of bokeh's Server that this one does not offer, with what to do instead.
UNSUPPORTED_OPTIONS = {
    "unix_socket": "serve a Unix socket with daphne -u, or put a proxy in front",
    "ssl_certfile": "terminate TLS in a proxy in front of the server",
    "ssl_keyfile": "terminate TLS in a proxy in front of the server",
    "ssl_password": "terminate TLS in a proxy in front of the server",
    "use_xheaders": "run daphne with --proxy-headers behind a proxy",
    "http_server_kwargs": "daphne takes no Tornado HTTPServer options",
    "extra_websocket_origins": "pass allow_websocket_origin",
    "auth_provider": "protect the app's views with Django authentication",
    "xsrf_cookies": "Django's CSRF middleware protects forms",
    "mem_log_frequency_milliseconds": "memory logging is not implemented",
    "websocket_compression_level": "daphne does not compress websocket messages",
    "websocket_compression_mem_level": "daphne does not compress websocket messages",
}
SERVER_OPTIONS = ("num_procs", "address", "port", "allow_websocket_origin", "websocket_max_message_size")
NUMERIC_OPTIONS = ("session_token_expiration", "websocket_max_message_size_bytes")


def web_application_options() -> frozenset[str]:
    import inspect

    from .asgi import BokehASGI

    names = set(inspect.signature(BokehASGI.__init__).parameters)
    return frozenset(names - {"self", "applications", "extra_websocket_origins", "origin_hint"})


def check_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Split off and check the Server's own options; return the web application's (raise on anything wrong)."""
    accepted = web_application_options()
    for name in kwargs:
        if name in UNSUPPORTED_OPTIONS:
            raise TypeError(f"Server option {name!r} is not supported by bokehserver: {UNSUPPORTED_OPTIONS[name]}")
        if name not in accepted:
            known = ", ".join(sorted(accepted | set(SERVER_OPTIONS)))
            raise TypeError(f"Server() got an unexpected keyword argument {name!r} (accepted: {known})")
    for name, value in kwargs.items():
        if (name.endswith("_milliseconds") or name in NUMERIC_OPTIONS) and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            raise ValueError(f"{name} must be a number, got {value!r}")
    return kwargs


def check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535 (0 picks a free port), got {port!r}")
    return port


def check_num_procs(num_procs: Any) -> int:
    if isinstance(num_procs, bool) or not isinstance(num_procs, int) or num_procs < 0:
        raise ValueError(f"num_procs must be an int >= 0 (0 means one per CPU), got {num_procs!r}")
    return num_procs or os.cpu_count() or 1


def check_origins(origins: Any) -> list[str] | None:
    if origins is None:
        return None
    if isinstance(origins, (str, bytes)) or not all(isinstance(host, str) for host in origins):
        raise ValueError(f"allow_websocket_origin must be a list of 'host[:port]' strings, got {origins!r}")
    return list(origins)


def as_asyncio_loop(io_loop: Any) -> asyncio.AbstractEventLoop | None:
    """An asyncio loop, or the one a Tornado IOLoop wraps (``asyncio_loop``), so bokeh's examples keep working."""
    if io_loop is None or isinstance(io_loop, asyncio.AbstractEventLoop):
        return io_loop
    inner = getattr(io_loop, "asyncio_loop", None)
    if isinstance(inner, asyncio.AbstractEventLoop):
        return inner
    raise TypeError(f"io_loop must be an asyncio event loop, got {io_loop!r}")


def build_applications(applications: Any, argv: list[str]) -> dict[str, Any]:
    from bokeh.application import Application

    if isinstance(applications, Mapping):
        specs = dict(applications)
    else:
        specs = {"/": applications}
    if not specs:
        raise ValueError("Server needs at least one application")
    built: dict[str, Application] = {}
    for route, spec in specs.items():
        if not isinstance(route, str) or not route.startswith("/"):
            raise registry.AppSpecError(f"app path {route!r} must be a string starting with '/'")
        if not (isinstance(spec, (Application, str, os.PathLike)) or callable(spec)):
            raise registry.AppSpecError(
                f"app at {route}: expected an Application, a modify_doc(doc) function or a path, got {spec!r}"
            )
        built[route] = registry.build_application(spec, argv)
    return built


def options_from_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The web application's options as ``settings.BOKEHSERVER`` (``cfg``) and bokeh's environment give them."""
    sign, secret = cfg["SIGN_SESSIONS"], cfg["SECRET_KEY"] or bokeh_settings.secret_key()
    if sign is None and "BOKEH_SIGN_SESSIONS" in os.environ:
        sign = bokeh_settings.sign_sessions()
    return dict(
        prefix=cfg["PREFIX"],
        extra_websocket_origins=(
            create_hosts_allowlist(cfg["ALLOW_WEBSOCKET_ORIGIN"], cfg["PORT"])
            if cfg["ALLOW_WEBSOCKET_ORIGIN"] is not None else None
        ),
        secret_key=secret,
        sign_sessions=sign,
        generate_session_ids=cfg["GENERATE_SESSION_IDS"],
        keep_alive_milliseconds=cfg["KEEP_ALIVE_MILLISECONDS"],
        check_unused_sessions_milliseconds=cfg["CHECK_UNUSED_SESSIONS_MILLISECONDS"],
        unused_session_lifetime_milliseconds=cfg["UNUSED_SESSION_LIFETIME_MILLISECONDS"],
        stats_log_frequency_milliseconds=cfg["STATS_LOG_FREQUENCY_MILLISECONDS"],
        use_index=cfg["USE_INDEX"],
        redirect_root=cfg["REDIRECT_ROOT"],
        websocket_max_message_size_bytes=cfg["WEBSOCKET_MAX_MESSAGE_SIZE"],
        websocket_max_send_queue_bytes=cfg["WEBSOCKET_MAX_SEND_QUEUE"],
        session_token_expiration=cfg["SESSION_TOKEN_EXPIRATION"],
        index=cfg["INDEX_TEMPLATE"],
        ico_path=cfg["ICO_PATH"],
        include_headers=cfg["INCLUDE_HEADERS"],
        exclude_headers=cfg["EXCLUDE_HEADERS"],
        include_cookies=cfg["INCLUDE_COOKIES"],
        exclude_cookies=cfg["EXCLUDE_COOKIES"],
        argv=list(cfg["APP_ARGV"]),
        record_interval_milliseconds=cfg["RECORD_INTERVAL_MILLISECONDS"],
        login_required=cfg["LOGIN_REQUIRED"],
        access=cfg["ACCESS"],
        login_check_milliseconds=cfg["LOGIN_CHECK_MILLISECONDS"],
    )
