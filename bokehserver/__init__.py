"""bokehserver: the Bokeh server as a reusable Django app.

Importing this package has no side effects; public names are loaded on first use.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ApplicationContext": "bokehserver.application_context",
    "BokehServerContext": "bokehserver.application_context",
    "BokehSessionContext": "bokehserver.application_context",
    "BokehASGI": "bokehserver.asgi",
    "bokeh_asgi_application": "bokehserver.asgi",
    "broadcast": "bokehserver.broadcasts",
    "broadcast_sync": "bokehserver.broadcasts",
    "updates_sessions": "bokehserver.broadcasts",
    "ServerConnection": "bokehserver.connection",
    "SessionConsumer": "bokehserver.consumers",
    "check_whitelist": "bokehserver.origins",
    "match_host": "bokehserver.origins",
    "Server": "bokehserver.server",
    "ServerSession": "bokehserver.session",
    "current_time": "bokehserver.session",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bokehserver' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
