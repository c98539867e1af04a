"""Refusing new work while the server shuts down: HTTP 503, websockets closed before accept."""
from __future__ import annotations

from typing import Any

from . import registry

__all__ = ("refuse_while_stopping",)


def refuse_while_stopping(application: Any) -> Any:
    """Wrap the site's ASGI application: once the web application is stopping, answer nothing new.

    Without it, a request on a kept-alive connection during a shutdown would start the stopped
    web application again (``on_server_loaded`` a second time) and build a session nobody destroys.
    """

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        web_app = registry.installed_web_application()  # none yet: nothing to stop
        if scope["type"] in ("http", "websocket") and web_app is not None and web_app.stopping:
            await _refuse(scope, receive, send)
            return
        await application(scope, receive, send)

    return guarded


async def _refuse(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1000})
        return
    body = b"Server shutting down\n"
    await send({
        "type": "http.response.start",
        "status": 503,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
