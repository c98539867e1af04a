"""Serving the web application with daphne, with the settings a Bokeh server needs.

daphne's defaults differ from bokeh serve's where clients notice: 1 MiB message limits (Bokeh
allows 20 MiB), websockets closed after a day, close reasons dropped. This module sets them.

daphne's ``run()`` blocks in ``reactor.run()`` and ends with the reactor, which Twisted cannot
restart. ``listen()`` does the rest of ``run()`` so that a loop someone else runs can drive the
reactor (``Server``), and ``close()`` ends what ``listen()`` began without stopping the reactor.
What it changes in autobahn and Twisted is in ``_compat.daphne``, used where proven.
Import this module only where daphne may install its Twisted reactor (runbokeh, Server).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import warnings
import socket
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import daphne.server  # noqa: F401  (installs the asyncio reactor before Twisted is imported elsewhere)
from daphne.http_protocol import HTTPFactory
from daphne.server import Server as DaphneServer
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

from ._compat.twisted import refused_bytes
from . import conf
from ._compat.daphne import data_reader, frame_writer
from ._compat.daphne import install_config_dump_shortcut, install_small_frame_unmasker
from ._compat.reactor import reactor_loop
from ._compat.versions import proven
from .asgi import BokehASGI
from .frames import SEND_BACKLOG, SEND_FRAMES
from .pipelining import BoundedWebRequest
from .websocket_protocol import ReasonedWebSocketProtocol

logger = logging.getLogger(__name__)

__all__ = ("BokehDaphneServer",)

# autobahn lets a server send only 1000 or 3000-4999, so not 1001 (going away)
SHUTDOWN_CLOSE_CODE = 1000
# seconds a SIGTERM shutdown gives websockets to close, consumers to finish (and 3x for the hooks)
SHUTDOWN_TIMEOUT = 5.0
_twisted_logging_started = False


class TrackingHTTPFactory(HTTPFactory):
    """daphne's HTTP factory, remembering its open channels so that a shutdown can close idle keep-alives,
    with requests that bound pipelining."""

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.channels: weakref.WeakSet[Any] = weakref.WeakSet()

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedWebRequest
        self.channels.add(protocol)
        return protocol


def _refused(protocol_ref: weakref.ref[Any]) -> int:
    """Bytes of the websocket of ``protocol_ref`` that its full socket refused (0 when gone or unknown).

    Bytes written since the last attempt are left out: they wait for the loop, not for the client.
    """
    protocol = protocol_ref()
    transport = getattr(protocol, "transport", None)
    return (refused_bytes(transport) or 0) if transport is not None else 0


def _begin_twisted_logging(verbosity: int) -> None:
    """Route Twisted's log as daphne does; Twisted allows choosing its log target once per process."""
    global _twisted_logging_started
    if _twisted_logging_started:
        return
    _twisted_logging_started = True
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    # Twisted takes over warnings.showwarning, and at low verbosity its observer drops them: the
    # warnings app code raises must still reach stderr or the logging system (captureWarnings).
    showwarning = warnings.showwarning
    if verbosity <= 1:
        globalLogBeginner.beginLoggingTo([lambda _: None], redirectStandardIO=False, discardBuffer=True)
    else:
        globalLogBeginner.beginLoggingTo([STDLibLogObserver(daphne.server.__name__)])
    warnings.showwarning = showwarning


class BokehDaphneServer(DaphneServer):
    """A daphne server for one BokehASGI: starts its jobs on the reactor's loop, stops them on shutdown.

    It listens on ``tcp:port=<port>:interface=<address>``, or on already bound ``sockets``
    (``Server`` binds in the parent process and forks), whose descriptors it duplicates.
    """

    def __init__(
        self,
        web_application: BokehASGI,
        asgi_application: Any,
        *,
        address: str | None,
        port: int,
        on_listen: Callable[[str, int], None] | None = None,
        signal_handlers: bool = True,
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        interface = address or "0.0.0.0"
        keep_alive_s = web_application.keep_alive_milliseconds / 1000.0
        endpoints = [] if sockets else [f"tcp:port={port}:interface={interface}"]
        super().__init__(
            application=asgi_application,
            # daphne exits when given no endpoint; adopted sockets are listened on separately
            endpoints=endpoints or [f"adopted:fd={sock.fileno()}" for sock in sockets],
            signal_handlers=signal_handlers,
            websocket_timeout=-1,
            ping_interval=keep_alive_s if keep_alive_s > 0 else 10**9,
            ping_timeout=max(30.0, 2 * keep_alive_s),
            websocket_max_message_size=web_application.websocket_max_message_size_bytes,
            websocket_max_frame_size=web_application.websocket_max_message_size_bytes,
            ready_callable=self._ready,
        )
        self.endpoints = endpoints
        self.web_application = web_application
        self._on_listen = on_listen
        self._sockets = list(sockets)
        self._ports: list[Any] = []
        self._closed = False
        self.listen_failure: str | None = None
        self.connections: dict[Any, dict[str, Any]] = {}
        self.http_factory: TrackingHTTPFactory | None = None

    def run(self) -> None:
        """Listen, then run the reactor until it stops (SIGINT/SIGTERM when ``signal_handlers``).

        On a daphne that ``listen()`` was not proven on, daphne's own ``run()`` does it.
        """
        from twisted.internet import defer, reactor

        def shut_down() -> Any:
            return defer.Deferred.fromFuture(asyncio.ensure_future(self.close(wait=True, timeout=SHUTDOWN_TIMEOUT)))

        # SIGTERM/SIGINT stop the reactor; before it stops: stop listening, close every socket, run the hooks
        reactor.addSystemEventTrigger("before", "shutdown", shut_down)
        if not proven("daphne listen"):
            super().run()
            return
        self.listen()
        if self.abort_start:
            return
        reactor.run(installSignalHandlers=self.signal_handlers)

    def listen(self) -> None:
        """Everything daphne's ``run()`` does except running the reactor: factories, ports, the ready call.

        Serving from a loop someone else runs has no daphne equivalent; on a daphne this was not
        proven on it still runs, after the one log line that says so.
        """
        from twisted.internet import reactor
        from twisted.internet.endpoints import serverFromString

        proven("daphne listen")

        self.connections = {}
        self.http_factory = TrackingHTTPFactory(self)
        self.ws_factory = WebSocketFactory(self, server=self.server_name)
        self.ws_factory.setProtocolOptions(
            autoPingTimeout=self.ping_timeout,
            allowNullOrigin=True,
            openHandshakeTimeout=self.websocket_handshake_timeout,
            maxMessagePayloadSize=self.websocket_max_message_size,
            maxFramePayloadSize=self.websocket_max_frame_size,
            # a client that breaks the websocket protocol (invalid UTF-8, a frame over the limit)
            # gets a close frame saying why (1007, 1009), not a TCP reset
            failByDrop=False,
        )
        _begin_twisted_logging(self.verbosity)
        reactor.callLater(1, self.application_checker)
        reactor.callLater(2, self.timeout_checker)
        for description in self.endpoints:
            logger.debug("Configuring endpoint %s", description)
            listener = serverFromString(reactor, str(description)).listen(self.http_factory)
            listener.addCallback(self.listen_success)
            listener.addErrback(self.listen_error)
            self.listeners.append(listener)
        for sock in self._sockets:
            self.listen_success(reactor.adoptStreamPort(sock.fileno(), sock.family, self.http_factory))
        loop = reactor_loop(reactor)
        asyncio.set_event_loop(loop)
        if self.verbosity >= 3 and loop is not None:
            loop.set_debug(True)
        if not self.abort_start and self.ready_callable:
            self.ready_callable()

    def _ready(self) -> None:
        from twisted.internet import reactor

        shortcuts = bool(conf.get("SPEED_SHORTCUTS"))
        install_config_dump_shortcut(shortcuts)
        install_small_frame_unmasker(shortcuts)
        self.ws_factory.protocol = ReasonedWebSocketProtocol
        self.ws_factory.write_frames = frame_writer(shortcuts)
        self.ws_factory.gather_messages = shortcuts
        self.ws_factory.read_data = data_reader(shortcuts)
        self.web_application.relay.adopt_connections_with(self.http_factory)
        reactor_loop(reactor).call_soon(self.web_application.start)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        if scope.get("type") == "websocket":
            extensions = scope.setdefault("extensions", {})
            extensions[SEND_FRAMES] = {}
            extensions[SEND_BACKLOG] = {"refused": functools.partial(_refused, weakref.ref(protocol))}
        return super().create_application(protocol, scope)

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        self._ports.append(port)
        host = port.getHost()
        if self._on_listen is not None:
            self._on_listen(host.host, host.port)

    def listen_error(self, failure: Any) -> None:
        """Remember why listening failed (``listen_failure``) and stop, as daphne does."""
        self.listen_failure = failure.getErrorMessage()
        super().listen_error(failure)

    def application_checker(self) -> None:
        if not self._closed:
            super().application_checker()

    def timeout_checker(self) -> None:
        if not self._closed:
            super().timeout_checker()

    def stop_listening(self) -> list[Any]:
        """Start closing the listening ports; return Deferreds that fire once they are closed.

        Connections already open stay open.
        """
        ports, self._ports = self._ports, []
        return [d for d in (port.stopListening() for port in ports) if d is not None]

    def close_connections(self, *, abort: bool = False) -> None:
        """Close open websockets saying the server shuts down, or drop every connection at once with ``abort``."""
        if abort:
            channels = list(getattr(self.http_factory, "channels", ()))  # daphne's own run() has a plain factory
            for channel in channels:
                transport = getattr(channel, "transport", None)
                if transport is not None and transport.connected:
                    transport.abortConnection()
            return
        for protocol in self._open_websockets():
            protocol.sendClose(code=SHUTDOWN_CLOSE_CODE, reason="Server shutting down")

    def _open_websockets(self) -> list[Any]:
        return [p for p in self.connections if isinstance(p, WebSocketProtocol) and p.state == p.STATE_OPEN]

    async def close(self, wait: bool = True, timeout: float = 5.0) -> None:
        """Stop listening, close connections, end the application instances, stop the web application.

        The reactor keeps running (Twisted reactors cannot restart). With ``wait``, websockets get
        up to ``timeout`` seconds to close cleanly and applications to finish their disconnect
        handling before they are cancelled.
        """
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(d.asFuture(loop) for d in self.stop_listening()), return_exceptions=True)
        self.web_application.begin_stop()
        sessions = len(self.web_application.get_sessions())
        logger.info("Stopping: no longer listening; closing %d websockets, then ending %d sessions",
                    len(self._open_websockets()), sessions)
        self.close_connections()
        if wait:
            await self._wait_for(self._websockets_closed, timeout)
        self.close_connections(abort=True)
        instances = [
            details["application_instance"]
            for details in self.connections.values()
            if "application_instance" in details
        ]
        if wait and instances:
            await asyncio.wait(instances, timeout=timeout)
        for instance in instances:
            instance.cancel()
        await asyncio.gather(*instances, return_exceptions=True)
        try:  # every session's on_session_destroyed, then on_server_unloaded, then the last records
            await asyncio.wait_for(self.web_application.stop(wait), timeout=(3 * timeout) if wait else None)
        except asyncio.TimeoutError:
            logger.warning("Stopping the Bokeh applications took more than %.0f s; some hooks did not finish", 3 * timeout)
        else:
            logger.info("Stopped: %d sessions ended, their hooks and on_server_unloaded ran", sessions)
        self._cancel_timers()

    def _websockets_closed(self) -> bool:
        return not any(
            isinstance(protocol, WebSocketProtocol) and "disconnected" not in details
            for protocol, details in self.connections.items()
        )

    @staticmethod
    async def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition() and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def _cancel_timers(self) -> None:
        from twisted.internet import reactor

        for call in reactor.getDelayedCalls():
            if getattr(call.func, "__self__", None) is self:
                call.cancel()
