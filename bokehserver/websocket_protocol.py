"""daphne's websocket protocol as a Bokeh server needs it: close reasons, whole messages, bounded queues."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from daphne.ws_protocol import WebSocketProtocol

from ._compat.daphne import frame_gatherer, send_each_frame
from ._compat.twisted import unsent_bytes
from .frames import SEND_FRAMES
from .gathering import FrameGatherer

logger = logging.getLogger(__name__)

__all__ = ("ReasonedWebSocketProtocol",)

SLOW_READER_CLOSE_CODE = 4008
# messages from one client waiting for its consumer: reading pauses at HIGH, resumes at LOW
INBOUND_QUEUE_HIGH, INBOUND_QUEUE_LOW, INBOUND_QUEUE_POLL = 64, 16, 0.005

class ReasonedWebSocketProtocol(WebSocketProtocol):
    """daphne's websocket protocol, also sending the close reason the application gave, and
    whole Bokeh messages (the ``SEND_FRAMES`` extension) written out at once, with bounded
    queues both ways."""

    _reading_paused = False
    _gatherer: FrameGatherer | None | bool = False  # False: not made yet

    def handle_reply(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in (SEND_FRAMES, "websocket.send") and self._reader_fell_behind():
            return
        if kind == SEND_FRAMES:
            self._send_frames(message["frames"])
            return
        if kind == "websocket.close" and self.state != self.STATE_CONNECTING:
            reason = message.get("reason") or None
            self.sendClose(code=message.get("code") or 1000, reason=reason)
            return
        super().handle_reply(message)

    def dataReceived(self, data: bytes) -> None:
        read = getattr(self.factory, "read_data", None)
        if read is None:
            super().dataReceived(data)
        else:
            read(self, data)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """Queue the frame for the application (a whole Bokeh message at once: ``gathering``); stop
        reading the socket while the application is behind.

        daphne's queue to the application has no bound: a client sending faster than its
        session works would fill the server's memory. Paused, the client's TCP window fills.
        """
        gatherer = self._gatherer
        if gatherer is False:
            gatherer = self._gatherer = self._make_gatherer()
        if gatherer is None:
            super().onMessage(payload, isBinary)
        else:
            gatherer.feed(payload, isBinary)
        queue = getattr(self, "application_queue", None)
        if queue is not None and not self._reading_paused and queue.qsize() >= INBOUND_QUEUE_HIGH:
            self._reading_paused = True
            self.transport.pauseProducing()
            self._resume_reading_when_drained()

    def _make_gatherer(self) -> FrameGatherer | None:
        """One event per Bokeh message for the application, where the server's shortcuts allow it."""
        limit = self.server.web_application.websocket_max_message_size_bytes
        shortcuts = getattr(self.factory, "gather_messages", False)
        return frame_gatherer(self, limit, shortcuts, super().onMessage)

    def _resume_reading_when_drained(self) -> None:
        from twisted.internet import reactor

        if self.state == self.STATE_CLOSED or self.transport is None:
            return
        if self.application_queue.qsize() > INBOUND_QUEUE_LOW:
            reactor.callLater(INBOUND_QUEUE_POLL, self._resume_reading_when_drained)
            return
        self._reading_paused = False
        self.transport.resumeProducing()

    def _reader_fell_behind(self) -> bool:
        """Close a socket whose client leaves more than the send queue limit unread; True if closed.

        What the client has not read waits in the transport's write buffer; a client that stops
        reading while its session keeps changing would hold ever more of the server's memory.
        """
        if self.state != self.STATE_OPEN:
            return False
        limit = self.server.web_application.websocket_max_send_queue_bytes
        unsent = unsent_bytes(self.transport)
        if unsent is None or unsent <= limit:
            return False
        logger.warning(
            "Closing websocket from %s: it left %d bytes unread (WEBSOCKET_MAX_SEND_QUEUE is %d)",
            self.client_addr, unsent, limit,
        )
        self.sendClose(code=SLOW_READER_CLOSE_CODE, reason="client does not read what the server sends")
        self.dropConnection(abort=True)
        return True

    def _send_frames(self, frames: Sequence[str | bytes]) -> None:
        """Send every frame of one message, written as the server's frame writer says."""
        if self.state != self.STATE_OPEN:
            return
        write = getattr(self.factory, "write_frames", send_each_frame)
        write(self, frames)
