"""ApplicationContext: one Bokeh Application and the sessions it has made in this process."""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bokeh.application import Application
from bokeh.application.application import ServerContext, SessionContext
from bokeh.document import Document
from bokeh.protocol.exceptions import ProtocolError
from bokeh.util.token import get_token_payload

from . import _compat, conf, heap, signals
from .access import login_key_of, owner_in
from .app_code import Lane
from .building import build_document
from .callbacks import ServerCallbacks
from .ending import ENDED_CLOSE_CODE, EndedSessions, close_reason, show_notice
from .quotas import LimitReached, SessionQuotas
from .records import Ended, SessionRecords
from .session import ServerSession
from .worker import Worker

if TYPE_CHECKING:
    from .request_data import RequestProxy

logger = logging.getLogger(__name__)

__all__ = ("ApplicationContext", "BokehServerContext", "BokehSessionContext", "LimitReached", "SessionEnded")


class SessionEnded(Exception):
    """The session was ended on purpose (logout, the admin): its id and token open nothing any more."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BokehServerContext(ServerContext):
    """What ``on_server_loaded``/``on_server_unloaded`` hooks receive."""

    def __init__(self, application_context: ApplicationContext) -> None:
        self._application_context = application_context

    @property
    def application_context(self) -> ApplicationContext:
        return self._application_context

    @property
    def sessions(self) -> list[ServerSession]:
        return list(self._application_context.sessions)

    def add_next_tick_callback(self, callback: Callable[[], Any]) -> Any:
        """Run ``callback`` (sync or async) soon, once, outside any session."""
        return self._application_context.server_callbacks.add_next_tick_callback(callback)

    def add_timeout_callback(self, callback: Callable[[], Any], timeout_milliseconds: int) -> Any:
        return self._application_context.server_callbacks.add_timeout_callback(callback, timeout_milliseconds)

    def add_periodic_callback(self, callback: Callable[[], Any], period_milliseconds: int) -> Any:
        """Run ``callback`` every period for the whole app, e.g. to fetch a feed once for all viewers."""
        return self._application_context.server_callbacks.add_periodic_callback(callback, period_milliseconds)

    def remove_callback(self, callback: Any) -> None:
        self._application_context.server_callbacks.remove_callback(callback)

    async def update_sessions(self, func: Callable[..., Any], *args: Any) -> int:
        """Apply ``func(doc, *args)`` to every live session's document under its lock."""
        return await self._application_context.update_sessions(func, *args)


class BokehSessionContext(SessionContext):
    """What session hooks and ``curdoc().session_context`` see."""

    def __init__(self, session_id: str, server_context: BokehServerContext, document: Document, logout_url: str | None = None) -> None:
        super().__init__(server_context, session_id)
        self._document = document
        self._session: ServerSession | None = None
        self._request: RequestProxy | None = None
        self._token: str | None = None
        self._logout_url = logout_url

    def _set_session(self, session: ServerSession) -> None:
        self._session = session

    @property
    def destroyed(self) -> bool:
        return self._session.destroyed if self._session is not None else False

    @property
    def document(self) -> Document:
        """The session's document (the one ``curdoc()`` returns in its callbacks)."""
        return self._document

    @property
    def session(self) -> ServerSession | None:
        return self._session

    @property
    def request(self) -> RequestProxy | None:
        return self._request

    @property
    def token_payload(self) -> dict[str, Any]:
        return get_token_payload(self._token) if self._token else {}

    @property
    def logout_url(self) -> str | None:
        return self._logout_url

    async def with_locked_document(self, func: Callable[[Document], Any]) -> Any:
        if self._session is None:
            result = func(self._document)
            return await result if inspect.isawaitable(result) else result
        return await self._session.with_document_locked(func, self._document)


_compat.complete_session_context(BokehSessionContext)


async def _call_hook(lane: Lane, handler: Any, name: str, context: Any) -> None:
    """Run one handler's hook: sync hooks on ``lane``'s thread, async ones awaited on the loop."""
    await lane.run(_compat.hook_function(handler, name), context)


class ApplicationContext:
    """Creates, finds and discards the sessions of one app; runs the app's lifecycle hooks."""

    def __init__(
        self,
        application: Application,
        io_loop: asyncio.AbstractEventLoop | None = None,
        url: str | None = None,
        logout_url: str | None = None,
        *,
        worker: Worker | None = None,
        records: SessionRecords | None = None,
        quotas: SessionQuotas | None = None,
    ) -> None:
        self._application = application
        self._records = records
        self._loop = io_loop
        self._url = url
        self._logout_url = logout_url
        self._worker = worker or Worker()
        self._quotas = quotas or SessionQuotas()
        self._sessions: dict[str, ServerSession] = {}
        self._pending_sessions: dict[str, asyncio.Future[ServerSession]] = {}
        self._session_contexts: dict[str, BokehSessionContext] = {}
        self._ended = EndedSessions()
        self._server_context = BokehServerContext(self)
        self._lane = Lane()  # server hooks and server callbacks: one thread, as for a session
        self.server_callbacks = ServerCallbacks(lambda: self._worker, f"app {url}", self._lane)
        if not any(isinstance(h, _compat.SessionDestroyedHandler) for h in application.handlers):
            application.add(_compat.SessionDestroyedHandler())

    @property
    def application(self) -> Application:
        return self._application

    @property
    def url(self) -> str | None:
        return self._url

    @property
    def server_context(self) -> BokehServerContext:
        return self._server_context

    @property
    def sessions(self) -> list[ServerSession]:
        return list(self._sessions.values())

    @property
    def worker(self) -> Worker:
        return self._worker

    def get_session(self, session_id: str) -> ServerSession:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise ProtocolError(f"No such session {session_id}") from None

    def find_session(self, session_id: str) -> ServerSession | None:
        return self._sessions.get(session_id)

    def ended_reason(self, session_id: str) -> str | None:
        """Why session ``session_id`` was ended on purpose (logout, the admin), or None."""
        return self._ended.reason(session_id)

    def get_session_context(self, session_id: str) -> BokehSessionContext:
        return self._session_contexts[session_id]

    async def run_load_hook(self) -> None:
        self.server_callbacks.bind_loop(asyncio.get_running_loop())
        await self._run_server_hook("on_server_loaded")

    async def run_unload_hook(self) -> None:
        await self._run_server_hook("on_server_unloaded")
        self.server_callbacks.reset()

    async def update_sessions(self, func: Callable[..., Any], *args: Any) -> int:
        """Apply ``func(doc, *args)`` to each live session's document under its lock; return how many.

        Compute shared data once, then hand it here: each session gets the change as a
        PATCH-DOC to its connections. A failure in one session is logged and skips it only.
        """
        updated = 0
        for session in list(self._sessions.values()):
            if session.destroyed:
                continue
            try:
                await session.with_document_locked(func, session.document, *args)
            except Exception:
                logger.exception("update_sessions failed for %s session %s", self._url, session.id)
            else:
                updated += 1
        return updated

    async def _run_server_hook(self, name: str) -> None:
        for handler in self._application.handlers:
            try:
                await _call_hook(self._lane, handler, name, self._server_context)
            except Exception:
                logger.exception("Error in %s hook of app %s", name, self._url)

    async def create_session_if_needed(
        self, session_id: str, request: RequestProxy | None = None, token: str | None = None
    ) -> ServerSession:
        """Return the live session ``session_id``, building it (hooks, then ``modify_doc``) if new.

        Raises:
            LimitReached: the app has MAX_SESSIONS_PER_APP sessions already, or the requesting user
                or address its MAX_SESSIONS_PER_USER/MAX_SESSIONS_PER_ADDRESS.
        """
        if not session_id:
            raise ProtocolError("Session ID must not be empty")
        session = self._sessions.get(session_id)
        if session is not None:
            return session
        pending = self._pending_sessions.get(session_id)
        if pending is not None:
            return await asyncio.shield(pending)
        limit = conf.get("MAX_SESSIONS_PER_APP")
        if limit is not None and len(self._sessions) + len(self._pending_sessions) >= limit:
            raise LimitReached(f"{self.url} already has {limit} sessions (MAX_SESSIONS_PER_APP)")
        owner = owner_in(get_token_payload(token)) if token else None
        self._quotas.take(session_id, owner, request.remote_ip if request is not None else None)
        future: asyncio.Future[ServerSession] = asyncio.get_running_loop().create_future()
        self._pending_sessions[session_id] = future
        try:
            session = await self._build_session(session_id, request, token)
        except BaseException as exc:
            self._quotas.release(session_id)
            future.set_exception(exc)
            future.exception()  # a failure nobody else awaited is not "never retrieved"
            raise
        else:
            future.set_result(session)
            return session
        finally:
            del self._pending_sessions[session_id]

    async def _build_session(self, session_id: str, request: RequestProxy | None, token: str | None) -> ServerSession:
        ended = self._ended.reason(session_id)
        if ended is not None:
            raise SessionEnded(ended)
        doc = Document()
        context = BokehSessionContext(session_id, self._server_context, doc, logout_url=self._logout_url)
        if request is not None:
            payload = get_token_payload(token) if token else {}
            context._request = request.with_payload(payload)
        context._token = token
        _compat.set_session_context(doc, context)
        lane = Lane()
        for handler in self._application.handlers:
            try:
                await _call_hook(lane, handler, "on_session_created", context)
            except Exception:
                logger.exception("Error in on_session_created hook of app %s (session %s)", self._url, session_id)
        try:
            with _compat.bind_curdoc(doc):
                await lane.run(build_document, self._application, doc, self._url, session_id)
        except BaseException:  # cancelled, or the server's own failure: no session
            lane.release()
            raise
        _compat.connect_panel_onload(doc, self._application)
        session = ServerSession(
            session_id,
            doc,
            asyncio.get_running_loop(),
            token,
            worker=self._worker,
            label=f"{self._url} session {session_id}",
            lane=lane,
        )
        session.owner = owner_in(get_token_payload(token)) if token else None
        if session.owner is not None and request is not None:
            session.login_key = login_key_of(request.cookies)
        self._sessions[session_id] = session
        self._session_contexts[session_id] = context
        context._set_session(session)
        if self._records is not None:
            records, url = self._records, self._url or "/"
            records.created(url, session)
            session.observer = lambda s: records.changed(url, s)
        signals.send(signals.session_created, ApplicationContext, session=session, app_path=self._url,
                     request=context.request)
        heap.freeze_later(session)
        return session

    async def discard_session(self, session: ServerSession, *, force: bool = False) -> bool:
        """Destroy ``session`` if it still deserves it (or ``force``), then run the destroy hooks.

        Returns whether the session went. Its callbacks are all removed before the hooks run.
        """
        if not force and (session.connection_count > 0 or session.expiration_blocked):
            return False
        if force:
            await session.with_document_locked_on_loop(session.destroy)
        else:
            session.end_status = session.end_status or Ended.UNUSED
            await session.with_document_locked_on_loop(self._destroy_locked, session)
        if not session.destroyed:
            logger.debug("Session %s came back to life before it could be discarded", session.id)
            return False
        context = self._session_contexts.pop(session.id, None)
        self._sessions.pop(session.id, None)
        self._quotas.release(session.id)
        signals.send(signals.session_destroyed, ApplicationContext, session=session, app_path=self._url)
        if context is not None:
            for handler in self._application.handlers:
                try:
                    await _call_hook(session.lane, handler, "on_session_destroyed", context)
                except Exception:
                    logger.exception("Error in on_session_destroyed hook of app %s (session %s)", self._url, session.id)
        session.lane.release()
        session.release()
        return True

    async def end_session(self, session: ServerSession, reason: str, status: str = Ended.ENDED) -> bool:
        """End ``session`` for good: its pages show ``reason``, its sockets close, its hooks run.

        ``status`` is how its record says it ended (a ``records.Ended`` value).
        """
        if session.destroyed:
            return False
        session.end_status = status
        self._ended.add(session.id, reason)
        if session.connection_count:
            try:
                await session.with_document_locked_on_loop(show_notice, session.document, reason)
            except Exception:
                logger.exception("Could not show session %s of %s why it ended", session.id, self._url)
            for connection in session.connections:
                await connection.close(ENDED_CLOSE_CODE, close_reason(reason))
        logger.info("Ended session %s of %s: %s", session.id, self._url, reason)
        return await self.discard_session(session, force=True)

    def _destroy_locked(self, session: ServerSession) -> None:
        # with_document_locked counts this call as one block: more means someone else waits.
        if session.connection_count == 0 and session.expiration_blocked_count == 1:
            session.destroy()

    async def cleanup_sessions(self, unused_session_lifetime_ms: float) -> int:
        """Discard sessions with no connection for longer than the lifetime (or marked to expire)."""
        discarded = 0
        for session in list(self._sessions.values()):
            if session.connection_count or session.expiration_blocked:
                continue
            if session.expiration_requested or session.milliseconds_since_last_unsubscribe > unused_session_lifetime_ms:
                if await self.discard_session(session):
                    discarded += 1
                await asyncio.sleep(0)  # let other work in between: expiring many sessions never stalls
        return discarded

    async def discard_all_sessions(self) -> None:
        """Destroy every session of this app, connected or not (server shutdown)."""
        for session in list(self._sessions.values()):
            session.end_status = session.end_status or Ended.STOPPED
            await self.discard_session(session, force=True)
