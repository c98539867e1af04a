"""SessionConsumer: a Channels websocket consumer speaking the Bokeh session protocol."""
from __future__ import annotations

import calendar
import datetime as dt
import enum
import itertools
import logging
from collections.abc import Sequence
from typing import Any

from bokeh.protocol.exceptions import MessageError, ProtocolError, ValidationError
from bokeh.protocol.message import Message
from bokeh.protocol.receiver import Receiver
from bokeh.util.token import check_token_signature, get_session_id, get_token_payload
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from . import _compat, conf, registry, signals
from .access import owner_in, owner_of, websocket_user
from .application_context import ApplicationContext, LimitReached, SessionEnded
from .connection import ServerConnection
from .ending import close_reason
from .frames import SEND_BACKLOG, SEND_FRAMES, Frames
from .protocol_handler import ProtocolHandler
from .relay import RelayedSocket, RelayRefused
from .receiving import YieldingProtocol, assemble, consume, fragment_size
from .request_data import RequestProxy

logger = logging.getLogger(__name__)

__all__ = ("CloseCode", "SessionConsumer")


class CloseCode(enum.IntEnum):
    """Close codes for refused or broken sessions (daphne only sends 1000 and 3000-4999)."""

    INTERNAL_ERROR = 4000
    PROTOCOL_ERROR = 4001
    FORBIDDEN = 4003
    NOT_FOUND = 4004
    MESSAGE_TOO_BIG = 4009
    SESSION_EXPIRED = 4010
    APPLICATION_ERROR = 4011
    LIMIT_REACHED = 4029


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class Refused(Exception):
    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SessionConsumer(AsyncWebsocketConsumer):
    """Checks origin and token, attaches the socket to its session, then relays Bokeh messages.

    Frames that arrive before the ACK wait in Channels' queue and are handled after it.
    """

    _handler = ProtocolHandler()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Read the socket's ASGI messages one after another and dispatch each.

        Channels' consumer also gives every socket a channel-layer channel (a queue and a task
        that waits on it) and wraps each message's wait in a new task; sessions never receive
        channel-layer messages (admin actions reach the server's worker), so neither is needed.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self.state = ConnectionState.CONNECTING
        self.connection: ServerConnection | None = None
        self.relayed: RelayedSocket | None = None
        self._message_bytes = 0
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        except Exception as exc:
            logger.warning("Closing websocket to %s after an unexpected error: %r", self.scope.get("path"), exc)
            logger.debug("Traceback of the websocket error", exc_info=True)
            if self.state is ConnectionState.OPEN:
                await self._close_quietly(CloseCode.INTERNAL_ERROR, "server error")
        finally:
            # however the consumer ends (an error, or daphne cancelling it), its session lives on unattached
            await self._leave_session()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route an ASGI message to its handler, without Channels' per-message database check.

        Channels recycles Django's database connections before every message, a thread hop per
        websocket frame; this consumer touches no database, and app code recycles its own.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """End the consumer (no groups to leave, and no database to recycle: see ``dispatch``)."""
        await self.disconnect(message.get("code", 1000), message.get("reason"))
        raise StopConsumer()

    async def connect(self) -> None:
        self.receiver: Receiver | None = None
        web_app = registry.get_web_application()
        web_app.ensure_started()
        self.web_app = web_app
        origin = self._header("origin")
        if origin is not None and not web_app.allows_origin(origin, self._header("host")):
            logger.warning("Refusing websocket connection from Origin %r: %s",
                           origin, web_app.origin_refusal(origin, self._header("host")))
            await self.close(code=CloseCode.FORBIDDEN)
            return
        subprotocols = self.scope.get("subprotocols") or []
        if "bokeh" in subprotocols:
            await self.accept(subprotocol="bokeh")
        else:
            await self.accept()
        try:
            request = RequestProxy.from_scope(self.scope)
            context, session_id, token = await self._authorize(subprotocols, request)
            self.relayed = await web_app.relay.attach(self, context, session_id, token)
            if self.relayed is not None:  # the session lives in another process, which serves the socket
                self.state = ConnectionState.OPEN
                return
            session = await context.create_session_if_needed(session_id, request, token)
        except (Refused, RelayRefused) as exc:
            await self._refuse(exc.code, exc.reason)
            return
        except SessionEnded as exc:
            await self._refuse(CloseCode.SESSION_EXPIRED, close_reason(exc.reason))
            return
        except LimitReached as exc:
            await self._refuse(CloseCode.LIMIT_REACHED, str(exc)[:120])
            return
        except ProtocolError as exc:
            await self._refuse(CloseCode.PROTOCOL_ERROR, str(exc))
            return
        limit = conf.get("MAX_CONNECTIONS_PER_SESSION")
        if limit is not None and session.connection_count >= limit:
            await self._refuse(CloseCode.LIMIT_REACHED, f"session has {limit} connections (MAX_CONNECTIONS_PER_SESSION)")
            return
        protocol = self._protocol = YieldingProtocol()
        self.receiver = Receiver(protocol)
        self.connection = ServerConnection(protocol, self, context, session)
        self.state = ConnectionState.OPEN
        logger.info("WebSocket connection opened for %s session %s", context.url, session.id)
        await self.connection.send_message(protocol.create("ACK"))
        signals.send(signals.connection_opened, SessionConsumer, session=session, app_path=context.url, request=request)

    def _header(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self.scope.get("headers", []):
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    async def _authorize(self, subprotocols: list[str], request: RequestProxy) -> tuple[ApplicationContext, str, str]:
        web_app = self.web_app
        app_path = self.scope["url_route"]["kwargs"].get("app_path", "")
        if app_path is None:
            raise Refused(CloseCode.NOT_FOUND, f"no Bokeh application at {self.scope.get('path')}")
        route = web_app.route_for(app_path)
        context = web_app.context_for(route) if route is not None else None
        if context is None:
            raise Refused(CloseCode.NOT_FOUND, f"no Bokeh application at {route}")
        rule = web_app.access.rule_for(context.url)
        user = await websocket_user(self.scope, request.cookies) if rule.needs_user else None
        if rule.needs_user and not await rule.allows(user, request):
            raise Refused(CloseCode.FORBIDDEN, "permission denied" if user.is_authenticated else "login required")
        if len(subprotocols) != 2 or subprotocols[0] != "bokeh":
            raise Refused(CloseCode.FORBIDDEN, "Subprotocol header is not 'bokeh' followed by a session token")
        token = subprotocols[1]
        try:
            valid = check_token_signature(token, secret_key=web_app.secret_key, signed=web_app.sign_sessions)
            payload = get_token_payload(token) if valid else {}
            session_id = get_session_id(token)
        except Exception:
            raise Refused(CloseCode.FORBIDDEN, "Malformed session token") from None
        if not valid:
            raise Refused(CloseCode.FORBIDDEN, "Invalid token signature")
        expiry = payload.get("session_expiry")
        if expiry is None:
            raise Refused(CloseCode.FORBIDDEN, "Session expiry has not been provided")
        if calendar.timegm(dt.datetime.now(dt.timezone.utc).timetuple()) >= expiry:
            raise Refused(CloseCode.FORBIDDEN, "Token is expired; a longer session token expiration can be configured")
        owner = owner_in(payload)
        if owner is not None:
            if user is None:
                user = await websocket_user(self.scope, request.cookies)
            if owner_of(user) != owner:
                raise Refused(CloseCode.FORBIDDEN, "session belongs to another user")
        existing = context.find_session(session_id)
        if existing is not None and existing.owner != owner:
            raise Refused(CloseCode.FORBIDDEN, "session belongs to another user")
        return context, session_id, token

    async def _refuse(self, code: CloseCode, reason: str, detail: str = "") -> None:
        logger.warning("Closing websocket to %s: %s%s (%d)", self.scope.get("path"), reason, f": {detail}" if detail else "", code)
        await self._close_quietly(code, reason)
        await self._leave_session()

    async def _close_quietly(self, code: int, reason: str) -> None:
        self.state = ConnectionState.CLOSED
        try:
            await self.close(code=int(code), reason=reason)
        except Exception as exc:
            logger.debug("Closing a websocket failed: %r", exc)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.state is not ConnectionState.OPEN:
            return
        fragment: Any = bytes_data if bytes_data is not None else text_data
        if fragment is None:
            return
        size = fragment_size(fragment)
        if not await self._within_limit(size):
            return
        if self.relayed is not None:
            await self._relay(fragment)
            return
        try:
            message = await consume(self.receiver, fragment, size)
        except Exception as exc:
            await self._refuse_malformed(exc)
            return
        if message is None:
            return
        del fragment, text_data, bytes_data  # a big message's text is not kept while it is handled
        _compat.forget_received(self.receiver)
        await self._handle(message)

    async def bokehserver_websocket_receive_frames(self, event: dict[str, Any]) -> None:
        """A whole Bokeh message without buffers from our daphne server (``gathering.RECEIVE_FRAMES``)."""
        if self.state is not ConnectionState.OPEN:
            return
        frames: Frames = event.pop("frames")
        size = sum(fragment_size(frame) for frame in frames)
        if not await self._within_limit(size):
            return
        if self.relayed is not None:
            for frame in frames:
                await self._relay(frame)
            return
        try:
            message = await assemble(self._protocol, frames, size)
        except Exception as exc:
            await self._refuse_malformed(exc)
            return
        del frames, event  # a big message's text is not kept while it is handled
        await self._handle(message)

    async def _within_limit(self, size: int) -> bool:
        """Count ``size`` bytes of the message in progress (its buffers too); close the socket past the limit."""
        self._message_bytes += size
        if self._message_bytes > self.web_app.websocket_max_message_size_bytes:
            await self._refuse(CloseCode.MESSAGE_TOO_BIG, "message larger than the websocket max message size")
            return False
        return True

    async def _refuse_malformed(self, exc: Exception) -> None:
        if isinstance(exc, (ValidationError, MessageError, ProtocolError)):
            await self._refuse(CloseCode.PROTOCOL_ERROR, f"protocol error: {exc}"[:120])
        else:  # json.loads alone raises ValueError, RecursionError, KeyError, ...
            await self._refuse(CloseCode.PROTOCOL_ERROR, f"malformed message: {_short(exc)}"[:120])

    async def _handle(self, message: Message[Any]) -> None:
        """Count a whole incoming message, have it handled, send the reply."""
        if self.connection is not None:
            self.connection.received(self._message_bytes)
        self._message_bytes = 0
        try:
            reply = await self._handler.handle(message, self.connection)
        except ProtocolError as exc:
            await self._refuse(CloseCode.PROTOCOL_ERROR, str(exc)[:120])
            return
        except Exception as exc:
            logger.debug("Traceback of the %s error", message.msgtype, exc_info=True)
            # the client hears which message failed; the log also says how
            await self._refuse(CloseCode.INTERNAL_ERROR, f"server failed to handle {message.msgtype}", detail=repr(exc))
            return
        if reply is None or self.connection is None:
            return
        if isinstance(reply, tuple):
            await self.connection.send_frames(reply)
        else:
            await self.connection.send_message(reply)

    async def _relay(self, fragment: str | bytes) -> None:
        assert self.relayed is not None
        try:
            if await self.relayed.consume(fragment):
                self._message_bytes = 0
        except ProtocolError as exc:
            await self._refuse(CloseCode.PROTOCOL_ERROR, f"protocol error: {exc}"[:120])
        except RelayRefused as exc:
            await self._refuse(exc.code, exc.reason)  # type: ignore[arg-type]

    async def relay_closed(self, code: int, reason: str) -> None:
        """The session's owner closed the relayed socket (session ended, owner gone)."""
        self.relayed = None
        logger.info("Closing relayed websocket to %s: %s (%d)", self.scope.get("path"), reason, code)
        await self._close_quietly(code, reason)

    async def disconnect(self, code: int, reason: str | None = None) -> None:
        # a socket refused before or after accept has had its one WARNING line already
        log = logger.info if self.state is ConnectionState.OPEN and self.connection is not None else logger.debug
        session = self.connection._session if self.connection is not None else None
        log("WebSocket connection closed: code=%s, reason=%r (session %s)", code, reason, session and session.id)
        self.state = ConnectionState.CLOSED
        await self._leave_session(code)

    async def _leave_session(self, code: int | None = None) -> None:
        """Detach from the session (once), which then expires by the usual rules, and tell its app."""
        relayed, self.relayed = self.relayed, None
        if relayed is not None:
            await relayed.close()
        connection, self.connection = self.connection, None
        if connection is None:
            return
        session = connection._session
        connection.detach_session()
        signals.send(signals.connection_closed, SessionConsumer, session=session, app_path=connection.application_context.url,
                     code=code)
        if session is not None:
            try:
                await session.notify_connection_lost()
            except Exception:
                logger.exception("Error in connection_lost handlers of session %s", session.id)

    async def close_socket(self, code: int, reason: str) -> None:
        self.state = ConnectionState.CLOSED
        await self.close(code=code, reason=reason)

    def send_backlog(self) -> int:
        """Bytes sent on this socket that the kernel refused (full buffer), where the server says (our daphne); else 0."""
        backlog = self.scope.get("extensions", {}).get(SEND_BACKLOG)
        return backlog["refused"]() if backlog else 0

    async def send_frames(self, frames: Frames) -> None:
        """Send one message's frames: in one ASGI event where the server offers it (our daphne)."""
        if SEND_FRAMES in self.scope.get("extensions", {}):
            await self.base_send({"type": SEND_FRAMES, "frames": frames})
            return
        for frame in frames:
            if isinstance(frame, bytes):
                await self.base_send({"type": "websocket.send", "bytes": frame})
            else:
                await self.base_send({"type": "websocket.send", "text": frame})

    async def send_messages(self, messages: Sequence[Frames]) -> None:
        """Send whole messages in order: in one ASGI event, so one socket write, where the server offers it."""
        if SEND_FRAMES in self.scope.get("extensions", {}):
            await self.base_send({"type": SEND_FRAMES, "frames": tuple(itertools.chain.from_iterable(messages))})
            return
        for frames in messages:
            await self.send_frames(frames)


def _short(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"unknown message type {exc.args[0]!r}" if exc.args else "unknown key"
    return str(exc) or type(exc).__name__
