"""A websocket's TCP connection taken from daphne before its handshake is answered, and given to another daphne.

autobahn keeps the bytes of the opening handshake it parsed (``http_request_data``) and any that
followed (``data``); until the application accepts, nothing has been written back. Twisted's
``tcp.Server`` holds the socket. Taking the connection means: stop the reactor watching it, put an
unconnected socket in place of its descriptor (so that what Twisted does next, a shutdown or a
lingering close, cannot reach the client's connection, which lives on in the process it was
sent to), then let Twisted lose the placeholder as a normal close. The other process adopts the
descriptor with Twisted's public ``adoptStreamConnection`` and replays the request bytes into
its own daphne, which answers the handshake as if it had accepted the connection itself. Only
plain TCP on the versions ``versions.PROVEN`` names (``connection handoff``); anything else
(TLS, a Unix socket, another server) is not taken.
"""
from __future__ import annotations

import os
import socket
from typing import Any

from .daphne_sockets import daphne_protocol
from .versions import proven

__all__ = ("adopt_connection", "connection_fileno", "release_connection", "takeable_connection")


def takeable_connection(send: Any) -> tuple[Any, bytes] | None:
    """The daphne websocket behind ``send`` and the bytes its client sent, if its connection can be handed over.

    None when the socket is not a plain TCP socket of daphne, or its handshake is answered already.
    """
    protocol = daphne_protocol(send)
    if protocol is None or not proven("connection handoff"):
        return None
    from twisted.internet import tcp

    transport = getattr(protocol, "transport", None)
    request = getattr(protocol, "http_request_data", None)
    if type(transport) is not tcp.Server or not isinstance(request, bytes):
        return None
    if protocol.state != protocol.STATE_CONNECTING or transport.disconnecting:
        return None
    return protocol, request + bytes(getattr(protocol, "data", b"") or b"")


def connection_fileno(protocol: Any) -> int:
    """The descriptor of the socket behind daphne's websocket ``protocol``."""
    return protocol.transport.fileno()


def release_connection(protocol: Any) -> None:
    """Forget a connection sent to another process: nothing of it is read, written, shut down or reset here."""
    transport = protocol.transport
    transport.stopReading()
    transport.stopWriting()
    placeholder = socket.socket(transport.socket.family, socket.SOCK_STREAM)
    try:
        os.dup2(placeholder.fileno(), transport.socket.fileno(), inheritable=False)
    finally:
        placeholder.close()
    protocol.muted = True  # daphne tells no application about the close: the consumer has ended
    transport.loseConnection()


def adopt_connection(factory: Any, fd: int, request: bytes) -> None:
    """Serve the connected socket ``fd`` (closed here) with daphne's HTTP ``factory``, as if ``request`` had just arrived."""
    from twisted.internet import reactor

    sock = socket.socket(fileno=fd)
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setblocking(False)
        transport = reactor.adoptStreamConnection(sock.fileno(), sock.family, factory)
    finally:
        sock.close()
    if transport is not None:
        transport.protocol.dataReceived(request)
