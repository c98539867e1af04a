"""The owner's side of a relayed websocket: a connection to the session whose socket is in another process.

A websocket that reached another process is served here, where its session lives: the other
process sends each whole Bokeh message over the channel layer, and this proxy hands it to the
protocol handler as a consumer would; everything the session writes to the connection (replies,
other connections' patches, callbacks' updates, a close) goes back the same way, in order.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from bokeh.protocol import Protocol
from bokeh.protocol.exceptions import ProtocolError
from bokeh.protocol.receiver import Receiver

from . import conf
from .connection import ServerConnection
from .frames import Frames
from .protocol_handler import ProtocolHandler
from .traffic import frames_size

if TYPE_CHECKING:
    from .application_context import ApplicationContext
    from .session import ServerSession

logger = logging.getLogger(__name__)

__all__ = ("OwnerProxy",)

FRAMES = "bokehserver.relay.frames"
CLOSE = "bokehserver.relay.close"
PROTOCOL_ERROR, INTERNAL_ERROR, FELL_BEHIND, MESSAGE_TOO_BIG = 4001, 4000, 4008, 4009
# messages waiting to be relayed to one socket past which it is closed (Redis too slow, or gone)
OUTBOX_LIMIT = 10_000


class OwnerProxy:
    """Stands for a websocket held by another process: the session's ``Socket`` for one connection.

    Messages from the client wait in a queue and are handled one after another, as a consumer
    handles its socket's messages. Messages to the client wait in an outbox that one writer
    empties: what the session writes back to back (a patch, then the OK) goes in one Redis
    round trip.
    """

    _handler = ProtocolHandler()

    def __init__(self, wire: Any, conn: str, reply_to: str, context: ApplicationContext, session: ServerSession,
                 on_end: Any) -> None:
        self._wire = wire
        self.conn = conn
        self.reply_to = reply_to
        self._on_end = on_end
        self._queue: asyncio.Queue[list[Any] | None] = asyncio.Queue()
        self._protocol = Protocol()
        self._receiver = Receiver(self._protocol)
        self._closed = False
        self._outbox: list[dict[str, Any]] = []
        self._writer: asyncio.Task[None] | None = None
        self.connection = ServerConnection(self._protocol, self, context, session)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Greet the client (ACK), then serve its messages until it or the session closes."""
        await self.connection.send_message(self._protocol.create("ACK"))
        self._task = asyncio.get_running_loop().create_task(self._serve(), name=f"relay {self.conn}")

    def deliver(self, frames: list[Any] | None) -> None:
        """Queue one client message (its frames), or None: the client went away."""
        self._queue.put_nowait(frames)

    async def _serve(self) -> None:
        try:
            while not self._closed:
                frames = await self._queue.get()
                if frames is None:
                    break
                await self._handle(frames)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Relayed connection %s failed", self.conn)
            await self.close_socket(INTERNAL_ERROR, "server error")
        finally:
            await self._leave()

    async def _handle(self, frames: list[Any]) -> None:
        message = None
        try:
            for frame in frames:
                message = await self._receiver.consume(frame)
            if message is None:
                raise ProtocolError("incomplete message")
        except Exception as exc:
            await self.close_socket(PROTOCOL_ERROR, f"protocol error: {exc}"[:120])
            return
        self.connection.received(frames_size(frames))
        try:
            reply = await self._handler.handle(message, self.connection)
        except ProtocolError as exc:
            await self.close_socket(PROTOCOL_ERROR, str(exc)[:120])
            return
        except Exception as exc:
            logger.warning("Closing relayed connection %s: server failed to handle %s: %r", self.conn, message.msgtype, exc)
            await self.close_socket(INTERNAL_ERROR, f"server failed to handle {message.msgtype}")
            return
        if reply is None:
            return
        if isinstance(reply, tuple):
            await self.connection.send_frames(reply)
        else:
            await self.connection.send_message(reply)

    async def send_frames(self, frames: Frames) -> None:
        """Queue one message's frames for the process holding the socket (the connection orders them)."""
        if self._closed:
            return
        limit = conf.get("RELAY_MAX_MESSAGE_SIZE")
        if limit is not None and frames_size(frames) > limit:
            logger.warning("Closing relayed connection %s: a %s message of %d bytes is over RELAY_MAX_MESSAGE_SIZE",
                           self.conn, json.loads(frames[0]).get("msgtype"), frames_size(frames))
            await self.close_socket(MESSAGE_TOO_BIG, "message larger than the relay limit (RELAY_MAX_MESSAGE_SIZE)")
            return
        if len(self._outbox) >= OUTBOX_LIMIT:
            logger.warning("Closing relayed connection %s: %d messages wait to be relayed", self.conn, len(self._outbox))
            await self.close_socket(FELL_BEHIND, "the relay to this socket fell behind")
            return
        self._post({"type": FRAMES, "conn": self.conn, "frames": list(frames)})

    async def close_socket(self, code: int, reason: str) -> None:
        """Close the client's websocket (in the process that holds it), after what was sent, and end this proxy."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        self._post({"type": CLOSE, "conn": self.conn, "code": int(code), "reason": reason})

    def _post(self, message: dict[str, Any]) -> None:
        self._outbox.append(message)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(), name=f"relay writer {self.conn}")

    async def _write(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self._wire.send_batch(self.reply_to, batch)
            except Exception as exc:
                logger.warning("Closing relayed connection %s: could not relay %d messages (%r)", self.conn, len(batch), exc)
                self._outbox.clear()
                if not self._closed:
                    self._closed = True
                    self._queue.put_nowait(None)
                return

    async def _leave(self) -> None:
        """Detach from the session (once) and run its connection-lost handlers, as a consumer does."""
        self._closed = True
        self._on_end(self.conn)
        session = self.connection._session
        self.connection.detach_session()
        if session is not None:
            try:
                await session.notify_connection_lost()
            except Exception:
                logger.exception("Error in connection_lost handlers of session %s", session.id)

    async def stop(self) -> None:
        """End the proxy from this side (the server stops): its client hears a close."""
        await self.close_socket(1000, "server shutting down")
        await asyncio.gather(*(t for t in (self._task, self._writer) if t is not None), return_exceptions=True)
