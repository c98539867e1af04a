"""ServerSession: one live Document shared by the connections of one session id."""
from __future__ import annotations

import asyncio
import enum
import inspect
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bokeh.document import Document
from bokeh.document.events import DocumentPatchedEvent, SessionCallbackAdded, SessionCallbackRemoved
from bokeh.events import ConnectionLost
from bokeh.protocol import Protocol
from bokeh.util.serialization import make_id
from bokeh.util.token import generate_jwt_token

from . import _compat, heap
from .app_code import Lane
from .callbacks import CallbackGroup
from .connection import send_grouped
from .document_limits import DocumentTooBig, check_document_size
from .frames import Frames, message_frames
from .traffic import Traffic
from .worker import Worker

if TYPE_CHECKING:
    from bokeh.protocol.message import Message
    from bokeh.server.callbacks import SessionCallback

    from .connection import ServerConnection

logger = logging.getLogger(__name__)

__all__ = ("DocumentTooBig", "ServerSession", "current_time")

T = TypeVar("T")

_protocol = Protocol()


async def _call_on_loop(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = func(*args, **kwargs)
    while inspect.isawaitable(result):
        result = await result
    return result


def current_time() -> float:
    """Return the time in milliseconds since the epoch, as a float."""
    return time.time() * 1000.0


def _weak_invoker(session: ServerSession) -> Callable[[SessionCallback], Awaitable[None]]:
    """``session._invoke_callback`` without a strong reference to the session."""
    method = weakref.WeakMethod(session._invoke_callback)

    async def invoke(callback: SessionCallback) -> None:
        bound = method()
        if bound is not None:
            await bound(callback)

    return invoke


def _weak_backlog(session: ServerSession) -> Callable[[], int]:
    """``session.send_backlog`` without a strong reference to the session (0 once it is gone)."""
    method = weakref.WeakMethod(session.send_backlog)

    def backlog() -> int:
        bound = method()
        return bound() if bound is not None else 0

    return backlog


class SessionState(enum.Enum):
    LIVE = "live"
    DESTROYED = "destroyed"


class ServerSession:
    """Hosts one session's Document for every connection subscribed to it.

    All document work happens under the session's lock; each change made under it is
    serialized once and the same frames go to every connection that needs them, before the
    lock is released.
    """

    def __init__(
        self,
        session_id: str,
        document: Document,
        io_loop: asyncio.AbstractEventLoop | None = None,
        token: str | None = None,
        *,
        worker: Worker | None = None,
        label: str = "",
        lane: Lane | None = None,
    ) -> None:
        if not session_id:
            raise ValueError("Sessions must have an id")
        if document is None:
            raise ValueError("Sessions must have a document")
        self._id = session_id
        self._token = token
        self._document = document
        self._loop = io_loop or asyncio.get_running_loop()
        self._label = label or session_id
        self._lane = lane or Lane()
        self._subscribed: list[ServerConnection] = []
        self._last_unsubscribe_time = time.monotonic()
        self._lock = asyncio.Lock()
        self._current_patch_connection: ServerConnection | None = None
        self._pending_writes: list[tuple[ServerConnection, Frames]] | None = None
        self._state = SessionState.LIVE
        self._expiration_requested = False
        self._expiration_blocked_count = 0
        self._version = 0
        self._pull_cache: tuple[int, Frames] | None = None
        self.observer: Callable[[ServerSession], None] | None = None
        # the user (primary key) whose request made the session, and the Django login it came with
        self.owner: str | None = None
        self.login_key: str | None = None
        # messages and bytes of every connection, counted as they pass (read by the records)
        self.traffic = Traffic()
        # how the session ended (a records.Status value), set by whoever ends it
        self.end_status: str | None = None
        # the group calls back through weak references: no cycle keeps an ended session alive
        self._callbacks = CallbackGroup(worker or Worker(), self._loop, _weak_invoker(self), self._label,
                                        backlog=_weak_backlog(self))
        # objects frozen out of the garbage collector with this session (``heap.freeze_pending``)
        self.heap_share = 0
        self._released_models: list[Any] = []
        document.callbacks.on_change_dispatch_to(self)
        for callback in document.session_callbacks:
            self._callbacks.add(callback)

    @property
    def id(self) -> str:
        return self._id

    @property
    def document(self) -> Document:
        return self._document

    @property
    def token(self) -> str:
        """The token the session was created with (what the page embeds)."""
        return self._token or generate_jwt_token(self._id)

    @property
    def destroyed(self) -> bool:
        return self._state is SessionState.DESTROYED

    @property
    def expiration_requested(self) -> bool:
        return self._expiration_requested

    @property
    def expiration_blocked(self) -> bool:
        return self._expiration_blocked_count > 0

    @property
    def expiration_blocked_count(self) -> int:
        return self._expiration_blocked_count

    @property
    def connection_count(self) -> int:
        return len(self._subscribed)

    @property
    def connections(self) -> list[ServerConnection]:
        return list(self._subscribed)

    @property
    def callback_count(self) -> int:
        return len(self._callbacks)

    @property
    def milliseconds_since_last_unsubscribe(self) -> float:
        return (time.monotonic() - self._last_unsubscribe_time) * 1000.0

    def current_time(self) -> float:
        return current_time()

    def request_expiration(self) -> None:
        """Let the next cleanup destroy this session as soon as it has no connection."""
        self._expiration_requested = True

    def block_expiration(self) -> None:
        self._expiration_blocked_count += 1

    def unblock_expiration(self) -> None:
        if self._expiration_blocked_count <= 0:
            raise RuntimeError("mismatched block_expiration / unblock_expiration")
        self._expiration_blocked_count -= 1

    @property
    def lane(self) -> Lane:
        """The thread the session's sync app code runs on (``app_code.Lane``)."""
        return self._lane

    def subscribe(self, connection: ServerConnection) -> None:
        if connection not in self._subscribed:
            self._subscribed.append(connection)
            self.traffic.touch()
            self._notify()

    def unsubscribe(self, connection: ServerConnection) -> None:
        if connection in self._subscribed:
            self._subscribed.remove(connection)
            self.traffic.touch()
            self._notify()
        self._last_unsubscribe_time = time.monotonic()

    def _notify(self) -> None:
        if self.observer is not None:
            self.observer(self)

    def destroy(self) -> None:
        """Stop every callback and release the document; the caller holds the lock."""
        if self.destroyed:
            return
        self._state = SessionState.DESTROYED
        self._callbacks.remove_all()
        self._released_models = _compat.destroy_document(self._document, self)
        self._notify()

    def release(self) -> None:
        """Once the destroy hooks have run: break the document's cycles, so counting frees it.

        The session's objects are frozen out of the garbage collector (``heap.py``), so nothing
        else would free them.
        """
        if not self.destroyed:
            raise RuntimeError(f"session {self._id} is live: destroy it first")
        models, self._released_models = self._released_models, []
        _compat.release_models(models)
        heap.release_session(self.heap_share)
        self.heap_share = 0

    def send_backlog(self) -> int:
        """The most bytes any of the session's websockets has written and its full socket refused."""
        return max((connection.send_backlog() for connection in self._subscribed), default=0)

    async def with_document_locked(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run ``func`` under the document lock, then write the changes it made to every connection.

        Synchronous ``func`` runs off the loop (``app_code``), a coroutine function on the loop.
        """
        return await self._locked(self._lane.run, func, *args, **kwargs)

    async def with_document_locked_on_loop(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Like ``with_document_locked`` for server code that must run on the loop itself."""
        return await self._locked(_call_on_loop, func, *args, **kwargs)

    async def _locked(self, runner: Callable[..., Any], func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._run_locked(None, runner, func, args, kwargs)

    async def _run_locked(self, replying: ServerConnection | None, runner: Callable[..., Any], func: Callable[..., Any],
                          args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``func`` under the lock, then send each connection the changes it made in one write.

        With ``replying``, ``func``'s result is the reply to that connection's message: it goes
        out last, after the changes and in the same write, and None is returned.
        """
        if self.destroyed:
            logger.debug("Ignoring locked work on destroyed session %s", self._id)
            return None
        self.block_expiration()
        try:
            async with self._lock:
                self._pending_writes = []
                try:
                    with _compat.bind_curdoc(self._document):
                        result = await runner(func, *args, **kwargs)
                finally:
                    writes, self._pending_writes = self._pending_writes, None
                if replying is None:
                    if writes:
                        await send_grouped(writes)
                    return result
                writes.append((replying, message_frames(result)))
                await send_grouped(writes, last=replying)
                return None
        finally:
            self.unblock_expiration()

    def _document_changed(self, event: Any) -> None:
        self._version += 1

    def _document_patched(self, event: DocumentPatchedEvent) -> None:
        if self._pending_writes is None:
            raise RuntimeError(
                f"session {self._id}: the document changed outside its lock; "
                "use doc.add_next_tick_callback from threads and unlocked callbacks"
            )
        suppressed = self._current_patch_connection if event.setter is self else None
        targets = [c for c in self._subscribed if c is not suppressed]
        if not targets:
            return
        frames = message_frames(_protocol.create("PATCH-DOC", [event]))
        self._pending_writes.extend((connection, frames) for connection in targets)

    def _session_callback_added(self, event: SessionCallbackAdded) -> None:
        self._callbacks.add(event.callback)

    def _session_callback_removed(self, event: SessionCallbackRemoved) -> None:
        self._callbacks.remove(event.callback)

    async def _invoke_callback(self, callback: SessionCallback) -> None:
        func = callback.callback
        if getattr(func, "nolock", False):
            with _compat.bind_curdoc(_compat.unlocked_proxy(self._document)):
                await self._lane.run(func)
            return
        await self.with_document_locked(func)

    def _pull_body(self, keep: bool) -> Frames:
        """The PULL-DOC-REPLY frames after the header, reusing a serialization of this very version."""
        cached = self._pull_cache
        if cached is not None and cached[0] == self._version:
            body = cached[1]
        else:
            body = message_frames(_protocol.create("PULL-DOC-REPLY", "", self._document))[1:]
        self._pull_cache = (self._version, body) if keep else None
        return body

    async def prepare_pull(self) -> None:
        """Serialize the document now, so the websocket the page is about to open gets it at once.

        A browser spends ~100 ms loading BokehJS between the page and its PULL-DOC-REQ; for a
        big document, that time is enough to have the reply ready.
        """
        await self.with_document_locked(self._pull_body, True)

    def _handle_push(self, message: Message[Any], connection: ServerConnection) -> Message[Any]:
        check_document_size(self._document, message, replaces=True)
        message.push_to_document(self._document)
        return connection.ok(message)

    def _handle_patch(self, message: Message[Any], connection: ServerConnection) -> Message[Any]:
        check_document_size(self._document, message, replaces=False)
        self._current_patch_connection = connection
        try:
            message.apply_to_document(self._document, self)
        finally:
            self._current_patch_connection = None
        return connection.ok(message)

    async def pull(self, message: Message[Any], connection: ServerConnection) -> Frames | None:
        """Answer a PULL-DOC-REQ with the whole document (as ready-made frames)."""
        body = await self.with_document_locked(self._pull_body, False)
        if body is None:
            return None
        header = {"msgid": make_id(), "msgtype": "PULL-DOC-REPLY", "reqid": message.header["msgid"],
                  "num_buffers": (len(body) - 2) // 2}
        return (json.dumps(header), *body)

    async def push(self, message: Message[Any], connection: ServerConnection) -> None:
        """Replace the document with a client's PUSH-DOC; the OK goes back here."""
        await self._run_locked(connection, self._lane.run, self._handle_push, (message, connection), {})

    async def patch(self, message: Message[Any], connection: ServerConnection) -> None:
        """Apply a client's PATCH-DOC; the OK goes back here, with the changes the app made, in one write."""
        await self._run_locked(connection, self._patch_runner, self._handle_patch, (message, connection), {})

    async def _patch_runner(self, func: Callable[..., Any], message: Message[Any], connection: ServerConnection) -> Any:
        """On the session's lane, unless the patch surely runs no app code (a pan moving a range)."""
        if _compat.runs_app_code(self._document, message.content, self):
            return await self._lane.run(func, message, connection)
        return func(message, connection)

    async def notify_connection_lost(self) -> None:
        """Fire the document's ``connection_lost`` event handlers (app code, so under the lock)."""
        if not self.destroyed:
            await self.with_document_locked(self._document.callbacks.trigger_event, ConnectionLost())
