"""ServerConnection: one websocket attached to one session, with ordered, whole-message sends."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bokeh.protocol import Protocol as BokehProtocol

from .frames import Frames, message_frames
from .traffic import PROCESS, frames_size

if TYPE_CHECKING:
    from bokeh.protocol.message import Message

    from .application_context import ApplicationContext
    from .session import ServerSession

logger = logging.getLogger(__name__)

__all__ = ("ServerConnection", "send_grouped")


class Socket(Protocol):
    """What a connection needs of its transport (the consumer, or a test double).

    A socket may also offer ``send_messages(messages)``: several whole messages in one write.
    """

    async def send_frames(self, frames: Frames) -> None: ...
    async def close_socket(self, code: int, reason: str) -> None: ...


class ServerConnection:
    """Writes each Bokeh message's frames back to back, never interleaved with another's."""

    def __init__(
        self,
        protocol: BokehProtocol,
        socket: Socket,
        application_context: ApplicationContext,
        session: ServerSession,
    ) -> None:
        self._protocol = protocol
        self._socket = socket
        self._application_context = application_context
        self._session: ServerSession | None = session
        self._write_lock = asyncio.Lock()
        self._closed = False
        self.opened_at = time.time()
        self.remote_address, self.user_agent = _peer(getattr(socket, "scope", None) or {})
        self._traffic = session.traffic
        session.subscribe(self)

    @property
    def protocol(self) -> BokehProtocol:
        return self._protocol

    @property
    def session(self) -> ServerSession:
        if self._session is None:
            raise RuntimeError("connection is detached from its session")
        return self._session

    @property
    def application_context(self) -> ApplicationContext:
        return self._application_context

    @property
    def closed(self) -> bool:
        return self._closed

    def detach_session(self) -> None:
        """Unsubscribe from the session; the session itself lives on for reconnects."""
        self._closed = True
        if self._session is not None:
            self._session.unsubscribe(self)
            self._session = None

    def ok(self, message: Message[Any]) -> Message[Any]:
        return self._protocol.create("OK", message.header["msgid"])

    def error(self, message: Message[Any], text: str) -> Message[Any]:
        """An ERROR reply without the server's traceback (bokeh adds the one being handled).

        The key stays, empty: bokeh.client formats every ERROR it receives with it.
        """
        reply = self._protocol.create("ERROR", message.header["msgid"], text)
        reply.content["traceback"] = None
        return reply

    def received(self, size: int) -> None:
        """Count one whole incoming message of ``size`` bytes (for the admin and the dashboard)."""
        self._traffic.received(size)
        PROCESS.received(size)

    async def send_message(self, message: Message[Any]) -> None:
        await self.send_frames(message_frames(message))

    def send_backlog(self) -> int:
        """Bytes written to this websocket that its full socket refused (0 where the socket cannot tell)."""
        backlog = getattr(self._socket, "send_backlog", None)
        return 0 if self._closed or backlog is None else backlog()

    async def send_frames(self, frames: Frames) -> None:
        """Write one message's frames; a dead socket detaches the connection instead of raising."""
        await self.send_messages((frames,))

    async def send_messages(self, messages: Sequence[Frames]) -> None:
        """Write whole messages in order, in one write where the socket can (a patch's changes and its OK)."""
        if self._closed or not messages:
            return
        async with self._write_lock:
            try:
                send_many = getattr(self._socket, "send_messages", None)
                if send_many is not None and len(messages) > 1:
                    await send_many(messages)
                else:
                    for frames in messages:
                        await self._socket.send_frames(frames)
                for frames in messages:
                    size = frames_size(frames)
                    self._traffic.sent(size)
                    PROCESS.sent(size)
            except Exception as exc:
                logger.warning("Dropping connection to session %s after a failed send: %r", self._session_id, exc)
                self.detach_session()

    async def close(self, code: int, reason: str) -> None:
        """Close the websocket (e.g. its session was expired) and detach from the session."""
        self.detach_session()
        try:
            await self._socket.close_socket(code, reason)
        except Exception as exc:
            logger.debug("Closing a websocket failed: %r", exc)

    @property
    def _session_id(self) -> str | None:
        return self._session.id if self._session is not None else None


async def send_grouped(writes: list[tuple[ServerConnection, Frames]], last: ServerConnection | None = None) -> None:
    """Send each connection its messages in order, in one write per connection; ``last``'s go out last."""
    if len(writes) == 1:
        connection, frames = writes[0]
        await connection.send_frames(frames)
        return
    grouped: dict[ServerConnection, list[Frames]] = {}
    for connection, frames in writes:
        grouped.setdefault(connection, []).append(frames)
    if last is not None:
        grouped[last] = grouped.pop(last)
    for connection, messages in grouped.items():
        await connection.send_messages(messages)


def _peer(scope: dict[str, Any]) -> tuple[str, str]:
    """The client's ``host:port`` and user agent, as the admin shows them."""
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else ""
    agent = ""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"user-agent":
            agent = value.decode("latin-1")
            break
    return address, agent
