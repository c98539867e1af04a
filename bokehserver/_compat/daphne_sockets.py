"""daphne's websocket connection, reached from the ASGI application: message limits and close reasons.

Plain ``daphne`` and daphne's ``runserver`` accept 1 MiB messages (``--websocket-max-message-size``)
and drop the reason of an application's ``websocket.close``. daphne hands an application its
``send`` as ``functools.partial(Server.handle_reply, protocol)``, the autobahn protocol of the
socket; through it the application raises that socket's limits to its own and closes with a
reason, as runbokeh's daphne does. Only on the versions ``versions.PROVEN`` names; with other
versions, or another server, ``send`` is used as it is (the server's own behaviour).
"""
from __future__ import annotations

import functools
import logging
from typing import Any

from ..types import Message, Send
from .versions import proven

logger = logging.getLogger(__name__)

__all__ = ("adopt_daphne_websocket", "daphne_protocol")

LIMIT_ATTRIBUTES = ("maxMessagePayloadSize", "maxFramePayloadSize")


def daphne_protocol(send: Any) -> Any | None:
    """The daphne websocket protocol behind ``send``, or None (another server, or unproven versions)."""
    if not isinstance(send, functools.partial) or not send.args or not proven("plain daphne sockets"):
        return None
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol

    protocol = send.args[0]
    if isinstance(getattr(send.func, "__self__", None), Server) and isinstance(protocol, WebSocketProtocol):
        return protocol
    return None


def adopt_daphne_websocket(send: Send, max_message_size: int) -> Send:
    """Raise daphne's limits for this socket to ``max_message_size``; return a ``send`` that closes with reasons.

    Returns ``send`` itself when it is not daphne's, or when the server already sends reasons.
    """
    protocol = daphne_protocol(send)
    if protocol is None:
        return send
    for attribute in LIMIT_ATTRIBUTES:
        current = getattr(protocol, attribute, 0)
        if 0 < current < max_message_size:
            setattr(protocol, attribute, max_message_size)
    from daphne.ws_protocol import WebSocketProtocol

    if type(protocol).handle_reply is not WebSocketProtocol.handle_reply:
        return send  # a daphne that handles close reasons itself (runbokeh's)
    server = send.func.__self__

    async def send_with_reasons(message: Message) -> None:
        if message.get("type") == "websocket.close" and message.get("reason") and protocol.state == protocol.STATE_OPEN:
            details = server.connections.get(protocol)
            if details is not None and not details.get("disconnected"):
                protocol.sendClose(code=message.get("code") or 1000, reason=message["reason"])
            return
        await send(message)

    return send_with_reasons
