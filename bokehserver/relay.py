"""Serving a websocket from the process that owns its session, whichever process holds the socket.

Sessions stay in the process that built them (their owner). With a Redis channel layer each
process has one relay channel, named in the tokens of the sessions it builds, so no lookup is
needed. A websocket whose token names another live process is relayed: this process sends the
client's whole Bokeh messages (header, metadata, content, buffers) to the owner, which serves
them through an ``OwnerProxy`` and sends back what the session writes, in order, both ways.
An owner that does not answer is gone: the socket gets a fresh session built here, as a
single-process server does for a token whose session it does not have. An owner that is a
sibling worker of this host (``--num-procs``) is handed the connection itself instead
(``handoff``): only what cannot be handed over is relayed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from bokeh.protocol.exceptions import ProtocolError
from bokeh.util.token import get_token_payload

from . import conf
from ._compat.handoff import adopt_connection
from .handoff import HANDOFF_KEY, Handoffs
from .layers import shared_layer
from .process import worker_group
from .relay_wire import wire_for
from .relay_owner import CLOSE, FRAMES, MESSAGE_TOO_BIG, OwnerProxy

if TYPE_CHECKING:
    from .application_context import ApplicationContext
    from .asgi import BokehASGI

logger = logging.getLogger(__name__)

__all__ = ("OWNER_KEY", "Relay", "RelayRefused", "RelayedSocket")

OWNER_KEY = "bokehserver_owner"
OPEN, OPENED, MISSING, REFUSED = ("bokehserver.relay." + name for name in ("open", "opened", "missing", "refused"))
MESSAGE, CLOSED = "bokehserver.relay.message", "bokehserver.relay.closed"
PING, PONG = "bokehserver.relay.ping", "bokehserver.relay.pong"
OWNER_GONE = 4012
LIMIT_REACHED, SESSION_EXPIRED = 4029, 4010
# pings an owner may miss before its sockets are closed
MISSED_PINGS = 3
RETRY_SECONDS = 1.0


class RelayRefused(Exception):
    """The owner refused the socket (session ended, too many connections): close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class RelayedSocket:
    """The holding side of a relayed websocket: whole client messages go to the owner.

    The Bokeh wire format says where a message ends (its header counts the buffers), so only
    the header is read here; the owner parses and checks the rest.
    """

    def __init__(self, relay: Relay, consumer: Any, conn: str, owner: str) -> None:
        self._relay = relay
        self.consumer = consumer
        self.conn = conn
        self.owner = owner
        self._frames: list[Any] = []
        self._expected = 0
        self._size = 0
        self.opened = False  # the owner took it (sockets still waiting for their owner are not pinged)
        self.closed = False

    async def consume(self, fragment: str | bytes) -> bool:
        """Add one frame; send the message once whole. True when a message was completed.

        Raises:
            ProtocolError: the first frame of a message is not a Bokeh header.
            RelayRefused: the message is larger than RELAY_MAX_MESSAGE_SIZE.
        """
        if not self._frames:
            try:
                header = json.loads(fragment)
                self._expected = 3 + 2 * int(header.get("num_buffers", 0) or 0)
            except Exception:
                raise ProtocolError("message does not start with a Bokeh header") from None
        self._frames.append(fragment)
        self._size += len(fragment)
        limit = conf.get("RELAY_MAX_MESSAGE_SIZE")
        if limit is not None and self._size > limit:
            raise RelayRefused(MESSAGE_TOO_BIG, "message larger than the relay limit (RELAY_MAX_MESSAGE_SIZE)")
        if len(self._frames) < self._expected:
            return False
        frames, self._frames, self._size = self._frames, [], 0
        await self._relay.send(self.owner, {"type": MESSAGE, "conn": self.conn, "frames": frames})
        return True

    async def close(self) -> None:
        """The client went away: tell the owner (once)."""
        if self.closed:
            return
        self.closed = True
        self._relay.forget(self.conn)
        try:
            await self._relay.send(self.owner, {"type": CLOSED, "conn": self.conn})
        except Exception as exc:
            logger.info("Could not tell %s that relayed connection %s closed: %r", self.owner, self.conn, exc)


class Relay:
    """One process's relay: its channel, the sockets it relays to owners, the proxies it owns."""

    def __init__(self, web_app: BokehASGI) -> None:
        self._web_app = web_app
        self._layer: Any = None
        self._wire: Any = None
        self._channel: str | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._sockets: dict[str, RelayedSocket] = {}
        self._proxies: dict[str, OwnerProxy] = {}
        self._pongs: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # sockets whose OPENED is on its way, and those of them that closed meanwhile
        self._opening: set[str] = set()
        self._cancelled: set[str] = set()
        self.handoffs = Handoffs()
        self._http_factory: Any = None

    @property
    def proxies(self) -> int:
        """Connections served here for sockets other processes hold."""
        return len(self._proxies)

    @property
    def relayed(self) -> int:
        """Sockets held here whose sessions live in other processes."""
        return len(self._sockets)

    async def channel(self) -> str | None:
        """This process's relay channel (None without a shared channel layer)."""
        if self._channel is None:
            layer = shared_layer()
            if layer is None:
                return None
            self._layer = layer
            self._wire = wire_for(layer)
            self._channel = await self._wire.new_channel()
        return self._channel

    async def claim(self) -> dict[str, str]:
        """What a new session's token carries to name this process as the owner ({} with one process)."""
        claims = {HANDOFF_KEY: self.handoffs.name} if self.handoffs.name is not None else {}
        channel = await self.channel()
        if channel is not None:
            claims[OWNER_KEY] = channel
        return claims

    def adopt_connections_with(self, http_factory: Any) -> None:
        """Serve websockets sibling workers hand over with daphne's ``http_factory`` (from ``start()`` on)."""
        self._http_factory = http_factory

    def hand_off(self, scope: dict[str, Any], send: Any) -> bool:
        """Give a websocket whose session a sibling worker built to that worker, before its handshake is answered.

        True once the sibling has the connection: nothing more is done with it here.
        """
        if self.handoffs.name is None:
            return False
        subprotocols = scope.get("subprotocols") or ()
        if len(subprotocols) != 2 or subprotocols[0] != "bokeh":
            return False
        try:
            name = get_token_payload(subprotocols[1]).get(HANDOFF_KEY)
        except Exception:
            return False
        return self.handoffs.hand_off(name, send)

    def start(self) -> None:
        """Take sibling workers' websockets, listen on the relay channel and check owners' liveness (worker tasks)."""
        factory = self._http_factory
        if factory is not None:
            self.handoffs.serve(worker_group(), lambda fd, request: adopt_connection(factory, fd, request))
        if shared_layer() is None:
            return
        worker = self._web_app.worker
        worker.spawn(self._listen(), name="relay-listener")
        worker.spawn(self._ping_owners(), name="relay-pings")

    async def stop(self) -> None:
        """Close the sockets held for other processes' sessions and the proxies served here."""
        self.handoffs.stop()
        for proxy in list(self._proxies.values()):
            await proxy.stop()
        for relayed in list(self._sockets.values()):
            await relayed.close()

    def forget(self, conn: str) -> None:
        self._sockets.pop(conn, None)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert self._wire is not None
        await self._wire.send(channel, message)

    def owner_of(self, token: str) -> str | None:
        """The relay channel of the process that built the token's session, if another one did."""
        try:
            owner = get_token_payload(token).get(OWNER_KEY)
        except Exception:
            return None
        if not isinstance(owner, str) or owner == self._channel or self._wire is None or not self._wire.owns(owner):
            return None
        return owner

    async def attach(self, consumer: Any, context: ApplicationContext, session_id: str, token: str) -> RelayedSocket | None:
        """Relay ``consumer``'s socket to the session's owner; None when it is to be served here.

        Raises:
            RelayRefused: the owner refused the socket.
        """
        if context.find_session(session_id) is not None:
            return None
        if await self.channel() is None:
            return None
        owner = self.owner_of(token)
        if owner is None:
            return None
        conn = uuid.uuid4().hex
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[conn] = waiter
        relayed = RelayedSocket(self, consumer, conn, owner)
        self._sockets[conn] = relayed
        timeout = conf.get("RELAY_OPEN_TIMEOUT_MILLISECONDS") / 1000.0
        try:
            await self.send(owner, {"type": OPEN, "conn": conn, "reply_to": self._channel,
                                    "app_path": context.url, "session_id": session_id})
            answer = await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            logger.warning("The process owning %s session %s did not answer within %.1f s (gone?): "
                           "building a fresh session here", context.url, session_id, timeout)
            answer = {"type": MISSING}
        finally:
            self._waiting.pop(conn, None)
        if answer["type"] == OPENED:
            self._pongs[owner] = 0
            logger.debug("Relaying websocket of %s session %s to %s", context.url, session_id, owner)
            return relayed
        self._sockets.pop(conn, None)
        if answer["type"] == REFUSED:
            raise RelayRefused(int(answer.get("code", SESSION_EXPIRED)), str(answer.get("reason", "refused")))
        logger.info("%s session %s is not at its owner any more: building a fresh session here", context.url, session_id)
        return None

    async def _listen(self) -> None:
        channel = await self.channel()
        assert channel is not None
        while True:
            try:
                messages = await self._wire.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("Relay lost Redis or the channel layer (%s: %s); retrying in %.1f s",
                               type(exc).__name__, exc, RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for message in messages:
                try:
                    await self._dispatch(message)
                except Exception:
                    logger.exception("Relay failed on a %s message", message.get("type"))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind, conn = message.get("type"), str(message.get("conn", ""))
        if kind == FRAMES:
            relayed = self._sockets.get(conn)
            if relayed is not None:
                await relayed.consumer.send_frames(tuple(message["frames"]))
        elif kind == MESSAGE or kind == CLOSED:
            proxy = self._proxies.get(conn)
            if proxy is not None:
                proxy.deliver(message["frames"] if kind == MESSAGE else None)
            elif kind == CLOSED and conn in self._opening:
                self._cancelled.add(conn)
        elif kind == CLOSE:
            relayed = self._sockets.pop(conn, None)
            if relayed is not None:
                relayed.closed = True
                await relayed.consumer.relay_closed(int(message.get("code", 1000)), str(message.get("reason", "")))
        elif kind in (OPENED, MISSING, REFUSED):
            if kind == OPENED and conn in self._sockets:
                self._sockets[conn].opened = True
            waiter = self._waiting.get(conn)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            elif kind == OPENED and isinstance(message.get("owner"), str):
                # it came after the wait ended, and the socket got a session here: release the owner's proxy
                self._spawn(self.send(message["owner"], {"type": CLOSED, "conn": conn}))
        elif kind == OPEN:
            self._spawn(self._open(message))
        elif kind == PING:
            self._spawn(self.send(str(message["reply_to"]), {"type": PONG, "owner": self._channel}))
        elif kind == PONG:
            self._pongs[str(message.get("owner"))] = 0

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, message: dict[str, Any]) -> None:
        """Serve a socket another process holds, for a session that lives here (an OPEN request)."""
        conn, reply_to = str(message["conn"]), str(message["reply_to"])
        context = self._web_app.context_for(str(message.get("app_path")))
        session = context.find_session(str(message.get("session_id"))) if context is not None else None
        answer: dict[str, Any] = {"type": MISSING, "conn": conn}
        if context is not None and session is None:
            ended = context.ended_reason(str(message.get("session_id")))
            if ended is not None:
                answer = {"type": REFUSED, "conn": conn, "code": SESSION_EXPIRED, "reason": f"session ended: {ended}"[:120]}
        if session is not None and not session.destroyed:
            limit = conf.get("MAX_CONNECTIONS_PER_SESSION")
            if limit is not None and session.connection_count >= limit:
                answer = {"type": REFUSED, "conn": conn, "code": LIMIT_REACHED,
                          "reason": f"session has {limit} connections (MAX_CONNECTIONS_PER_SESSION)"}
            else:
                self._opening.add(conn)
                try:
                    await self.send(reply_to, {"type": OPENED, "conn": conn, "owner": self._channel})
                finally:
                    self._opening.discard(conn)
                if conn in self._cancelled or session.destroyed:
                    self._cancelled.discard(conn)
                    if session.destroyed:
                        await self.send(reply_to, {"type": CLOSE, "conn": conn, "code": SESSION_EXPIRED, "reason": "session ended"})
                    return
                # subscribed and greeted with no wait in between: no patch can reach the client before its ACK
                proxy = OwnerProxy(self._wire, conn, reply_to, context, session, self._proxies.pop)
                self._proxies[conn] = proxy
                await proxy.start()
                return
        await self.send(reply_to, answer)

    async def _ping_owners(self) -> None:
        """Close the sockets relayed to owners that stopped answering (a process killed)."""
        period = conf.get("RELAY_PING_MILLISECONDS") / 1000.0
        while True:
            await asyncio.sleep(period)
            owners = {relayed.owner for relayed in self._sockets.values() if relayed.opened}
            for owner in list(self._pongs):
                if owner not in owners:
                    del self._pongs[owner]
            for owner in owners:
                missed = self._pongs.get(owner, 0)
                if missed >= MISSED_PINGS:
                    await self._owner_gone(owner, missed * period)
                    continue
                self._pongs[owner] = missed + 1
                try:
                    await self.send(owner, {"type": PING, "reply_to": self._channel})
                except Exception as exc:
                    logger.info("Could not ping relay owner %s: %r", owner, exc)

    async def _owner_gone(self, owner: str, seconds: float) -> None:
        gone = [relayed for relayed in self._sockets.values() if relayed.owner == owner and relayed.opened]
        logger.warning("The process owning %d relayed sessions has not answered for %.0f s: closing their websockets",
                       len(gone), seconds)
        self._pongs.pop(owner, None)
        for relayed in gone:
            self._sockets.pop(relayed.conn, None)
            relayed.closed = True
            await relayed.consumer.relay_closed(OWNER_GONE, "the server process of this session is gone; reload the page")

