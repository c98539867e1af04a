"""Acting on sessions from anywhere (the admin): directly in this process, by the channel layer in others.

Sessions live in the process that built them; with Redis as the channel layer every server
process listens on one group, acts on the sessions it owns and answers the asker, so an admin
action reports what really happened rather than what was asked.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import broadcasts
from .access import login_digest

if TYPE_CHECKING:
    from .asgi import BokehASGI
    from .models import BokehSession

logger = logging.getLogger(__name__)

__all__ = ("CONTROL_GROUP", "ExpireResult", "ask", "end_login_sessions", "expire_sessions", "listen")

CONTROL_GROUP = "bokehserver.control"
EXPIRE = "bokehserver.expire"
EXPIRED = "bokehserver.expired"
END_LOGIN = "bokehserver.end_login"
# reading live state (a session's, or every process's figures): answered by inspection.answer
INSPECT = "bokehserver.inspect"
INSPECTED = "bokehserver.inspected"
HOST = socket.gethostname()
# How long the asker waits for other processes to answer.
REPLY_SECONDS = 10.0
# The listener's wait before rejoining a channel layer that failed: doubles up to the cap.
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 0.5, 30.0
# A failing layer is reported at most this often (with a count of the failures in between).
REPORT_SECONDS = 60.0


@dataclass
class ExpireResult:
    """What an expire request did: sessions ended here, ended by other processes, and not reached."""

    here: int = 0
    elsewhere: int = 0
    unreachable: list[str] = field(default_factory=list)

    @property
    def ended(self) -> int:
        return self.here + self.elsewhere


def _is_local(host: str, pid: int) -> bool:
    return host == HOST and pid == os.getpid()


async def expire_sessions(records: Iterable[BokehSession], web_app: BokehASGI | None, *,
                          reason: str = "ended by the server", reply_seconds: float = REPLY_SECONDS,
                          status: str = "ended") -> ExpireResult:
    """End the sessions behind ``records`` for ``reason``, wherever they live, and say what happened.

    ``web_app`` is the one this process serves (None if it serves none): it ends the local ones.
    """
    from channels.layers import get_channel_layer

    result = ExpireResult()
    remote: dict[str, BokehSession] = {}
    for record in records:
        if record.destroyed_at is not None:
            continue
        if web_app is not None and _is_local(record.host, record.pid):
            if await web_app.expire_session(record.app_path, record.session_id, reason, status):
                result.here += 1
            continue
        remote[record.session_id] = record
    if not remote:
        return result
    layer = get_channel_layer()
    if layer is None:
        logger.warning("%d sessions live in other processes and no channel layer is configured", len(remote))
        result.unreachable.extend(remote)
        return result
    reply_to = await layer.new_channel()
    for record in remote.values():
        await layer.group_send(CONTROL_GROUP, {
            "type": EXPIRE, "host": record.host, "pid": record.pid, "reply_to": reply_to,
            "app_path": record.app_path, "session_id": record.session_id, "reason": reason, "status": status,
        })
    waiting = set(remote)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + reply_seconds
    while waiting and loop.time() < deadline:
        try:
            reply = await asyncio.wait_for(layer.receive(reply_to), deadline - loop.time())
        except asyncio.TimeoutError:
            break
        session_id = reply.get("session_id")
        if reply.get("type") == EXPIRED and session_id in waiting:
            waiting.discard(session_id)
            result.elsewhere += bool(reply.get("ended"))
    result.unreachable.extend(sorted(waiting))
    return result


async def ask(request: dict[str, Any], *, host: str = "", pid: int = -1, replies: int | None = 1,
              reply_seconds: float = REPLY_SECONDS, sender: tuple[str, int] | None = None) -> list[dict[str, Any]] | None:
    """Send an INSPECT ``request`` to process ``(host, pid)`` (every other process when ``host`` is "*")
    and return the answers that came within ``reply_seconds`` (all of them once ``replies`` came).
    ``sender`` is the asker's ``(host, pid)`` when a test plays several processes in one.

    None when no channel layer is configured.
    """
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return None
    reply_to = await layer.new_channel()
    await layer.group_send(CONTROL_GROUP, {**request, "type": INSPECT, "host": host, "pid": pid,
                                           "from": list(sender or (HOST, os.getpid())), "reply_to": reply_to})
    answers: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + reply_seconds
    while (replies is None or len(answers) < replies) and loop.time() < deadline:
        try:
            reply = await asyncio.wait_for(layer.receive(reply_to), deadline - loop.time())
        except asyncio.TimeoutError:
            break
        if reply.get("type") == INSPECTED:
            answers.append(reply.get("answer") or {})
    return answers


async def end_login_sessions(login_key: str, reason: str, web_app: BokehASGI | None) -> int:
    """End the sessions of one Django login (its user logged out) here, and ask every other process to.

    Returns how many ended in ``web_app``, this process's; other processes are not waited for.
    Only a digest of the login's session key crosses the channel layer.
    """
    from channels.layers import get_channel_layer

    digest = login_digest(login_key)
    ended = await web_app.end_login_sessions(digest, reason) if web_app is not None else 0
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(CONTROL_GROUP, {"type": END_LOGIN, "login": digest, "reason": reason,
                                               "host": HOST, "pid": os.getpid()})
    return ended


async def listen(web_app: BokehASGI, *, address: tuple[str, int] | None = None) -> None:
    """Serve control messages addressed to this process (or to ``(host, pid)``) until cancelled (a worker task).

    A channel layer that fails (Redis restarted, a connection killed, a socket timeout) is
    reported at most once a minute and joined again with backoff: the listener only ends when
    cancelled.
    (A Redis socket timeout shorter than the layer's blocking receive fails every few seconds:
    check ``bokehserver.W010`` says so at startup.)
    """
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    # one name for the listener's life: what is sent to it during an outage waits in the layer
    channel = await layer.new_channel()
    loop = asyncio.get_running_loop()
    retry = RETRY_FIRST_SECONDS
    last_report, unreported, announce = -REPORT_SECONDS, 0, False
    while True:
        joined_at = loop.time()
        try:
            await layer.group_add(CONTROL_GROUP, channel)
            if announce:
                logger.warning("Control listener rejoined the channel layer")
                announce = False
            while True:
                message: dict[str, Any] = await layer.receive(channel)
                retry = RETRY_FIRST_SECONDS
                await _serve(web_app, layer, message, address)
        except asyncio.CancelledError:
            await _leave(layer, channel)
            raise
        except Exception as exc:
            now = loop.time()
            if now - joined_at > RETRY_MAX_SECONDS:
                retry = RETRY_FIRST_SECONDS  # it had been working: a new outage
            unreported += 1
            if now - last_report >= REPORT_SECONDS:
                also = f" ({unreported - 1} more failures since the last report)" if unreported > 1 else ""
                logger.error("Control listener lost the channel layer (%s: %s)%s; rejoining in %.1f s",
                             type(exc).__name__, exc, also, retry)
                last_report, unreported, announce = now, 0, True
            await asyncio.sleep(retry)
            retry = min(retry * 2, RETRY_MAX_SECONDS)


async def _serve(web_app: BokehASGI, layer: Any, message: dict[str, Any], address: tuple[str, int] | None) -> None:
    if message.get("type") == broadcasts.BROADCAST:  # for every process
        await broadcasts.apply(web_app, message)
        return
    to = (message.get("host", ""), message.get("pid", -1))
    me = address or (HOST, os.getpid())
    here = to == me
    if message.get("type") == END_LOGIN and not here:  # the sender ended its own sessions itself
        await web_app.end_login_sessions(str(message.get("login")), str(message.get("reason", "logged out")))
        return
    if message.get("type") == INSPECT and (here or (to[0] == "*" and tuple(message.get("from", ())) != me)):
        from .inspection import answer

        reply: dict[str, Any] = {"type": INSPECTED, "answer": await answer(web_app, message)}
    elif message.get("type") == EXPIRE and here:
        ended = False
        try:
            ended = await web_app.expire_session(message["app_path"], message["session_id"],
                                                 str(message.get("reason", "ended by the server")),
                                                 str(message.get("status", "ended")))
        except Exception:
            logger.exception("Could not expire session %s of %s", message.get("session_id"), message.get("app_path"))
        reply = {"type": EXPIRED, "session_id": message.get("session_id"), "ended": ended}
    else:
        return
    reply_to = message.get("reply_to")
    if not reply_to:
        return
    try:
        await layer.send(reply_to, reply)
    except Exception as exc:
        # after an outage the layer may hand out a connection that died with it: one more try
        logger.info("Could not answer %s (%r); trying again", reply_to, exc)
        await layer.send(reply_to, reply)


async def _leave(layer: Any, channel: str) -> None:
    try:
        await layer.group_discard(CONTROL_GROUP, channel)
    except Exception:
        logger.debug("Could not leave the control group", exc_info=True)
