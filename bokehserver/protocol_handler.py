"""Dispatch of complete Bokeh messages to the session, and the replies they earn."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bokeh.protocol.exceptions import ProtocolError

from .app_errors import log_failure

if TYPE_CHECKING:
    from bokeh.protocol.message import Message

    from .connection import ServerConnection
    from .frames import Frames

logger = logging.getLogger(__name__)

__all__ = ("ProtocolHandler",)


class ProtocolHandler:
    """Routes PULL-DOC-REQ, PUSH-DOC, PATCH-DOC and SERVER-INFO-REQ; anything else is a violation."""

    async def handle(self, message: Message[Any], connection: ServerConnection) -> Message[Any] | Frames | None:
        """Return the reply to send (a message, or its frames); an app error becomes ERROR.

        The OK to a PATCH-DOC or PUSH-DOC is sent by the session, in one write with the changes
        the app made in answer (None here).

        The log gets the app's failure with its traceback, a client's bad patch in one line.

        Raises:
            ProtocolError: a message type a server does not accept, or a header without a msgid.
        """
        if not isinstance(message.header.get("msgid"), str):
            raise ProtocolError(f"{message.msgtype} header has no msgid")
        msgtype = message.msgtype
        if msgtype == "SERVER-INFO-REQ":
            return connection.protocol.create("SERVER-INFO-REPLY", message.header["msgid"])
        session = connection.session
        handler = {"PULL-DOC-REQ": session.pull, "PUSH-DOC": session.push, "PATCH-DOC": session.patch}.get(msgtype)
        if handler is None:
            raise ProtocolError(f"{msgtype!r} not expected on server")
        try:
            return await handler(message, connection)
        except Exception as exc:
            log_failure(logger, exc, "Error handling %s for session %s", msgtype, session.id)
            return connection.error(message, repr(exc))


