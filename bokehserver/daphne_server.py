"""Serving the web application with daphne, with the settings a Bokeh server needs.

daphne's defaults differ from bokeh serve's where clients notice: 1 MiB message limits (Bokeh
allows 20 MiB), websockets closed after a day, close reasons dropped. This module sets them.
Import it only where daphne may install its Twisted reactor (runbokeh, Server).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import daphne.server  # noqa: F401  (installs the asyncio reactor before Twisted is imported elsewhere)
from daphne.server import Server as DaphneServer
from daphne.ws_protocol import WebSocketProtocol

from .asgi import BokehASGI

logger = logging.getLogger(__name__)

__all__ = ("BokehDaphneServer",)


class ReasonedWebSocketProtocol(WebSocketProtocol):
    """daphne's websocket protocol, also sending the close reason the application gave."""

    def handle_reply(self, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            reason = message.get("reason") or None
            self.sendClose(code=message.get("code") or 1000, reason=reason)
            return
        super().handle_reply(message)


class BokehDaphneServer(DaphneServer):
    """A daphne server for one BokehASGI: starts its jobs on the reactor's loop, stops them on shutdown."""

    def __init__(
        self,
        web_application: BokehASGI,
        asgi_application: Any,
        *,
        address: str | None,
        port: int,
        on_listen: Callable[[str, int], None] | None = None,
        signal_handlers: bool = True,
    ) -> None:
        interface = address or "0.0.0.0"
        keep_alive_s = web_application.keep_alive_milliseconds / 1000.0
        super().__init__(
            application=asgi_application,
            endpoints=[f"tcp:port={port}:interface={interface}"],
            signal_handlers=signal_handlers,
            websocket_timeout=-1,
            ping_interval=keep_alive_s if keep_alive_s > 0 else 10**9,
            ping_timeout=max(30.0, 2 * keep_alive_s),
            websocket_max_message_size=web_application.websocket_max_message_size_bytes,
            websocket_max_frame_size=web_application.websocket_max_message_size_bytes,
            ready_callable=self._ready,
        )
        self.web_application = web_application
        self._on_listen = on_listen

    def _ready(self) -> None:
        from twisted.internet import defer, reactor

        self.ws_factory.protocol = ReasonedWebSocketProtocol
        loop = asyncio.get_event_loop()
        loop.call_soon(self.web_application.start)

        def stop_web_application() -> Any:
            return defer.Deferred.fromFuture(asyncio.ensure_future(self.web_application.stop()))

        reactor.addSystemEventTrigger("before", "shutdown", stop_web_application)

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        host = port.getHost()
        if self._on_listen is not None:
            self._on_listen(host.host, host.port)
