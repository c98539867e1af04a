"""Acting on sessions from anywhere (the admin): directly in this process, by the channel layer in others.

Sessions live in the process that built them; with Redis as the channel layer every server
process listens on one group and acts on the sessions it owns.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .asgi import BokehASGI
    from .models import BokehSession

logger = logging.getLogger(__name__)

__all__ = ("CONTROL_GROUP", "expire_sessions", "listen")

CONTROL_GROUP = "bokehserver.control"
EXPIRE = "bokehserver.expire"
HOST = socket.gethostname()


def _is_local(host: str, pid: int) -> bool:
    return host == HOST and pid == os.getpid()


async def expire_sessions(records: Iterable[BokehSession]) -> tuple[int, int]:
    """Expire the sessions behind ``records``; returns (destroyed here, asked of other processes)."""
    from channels.layers import get_channel_layer

    from . import registry

    here = asked = 0
    layer = None
    for record in records:
        if record.destroyed_at is not None:
            continue
        if _is_local(record.host, record.pid):
            if await registry.get_web_application().expire_session(record.app_path, record.session_id):
                here += 1
            continue
        layer = layer or get_channel_layer()
        if layer is None:
            logger.warning("Session %s lives in process %s:%d and no channel layer is configured",
                           record.session_id, record.host, record.pid)
            continue
        await layer.group_send(CONTROL_GROUP, {
            "type": EXPIRE, "host": record.host, "pid": record.pid,
            "app_path": record.app_path, "session_id": record.session_id,
        })
        asked += 1
    return here, asked


async def listen(web_app: BokehASGI) -> None:
    """Serve control messages addressed to this process until cancelled (a worker task)."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    channel = await layer.new_channel()
    await layer.group_add(CONTROL_GROUP, channel)
    try:
        while True:
            message: dict[str, Any] = await layer.receive(channel)
            if message.get("type") != EXPIRE or not _is_local(message.get("host", ""), message.get("pid", -1)):
                continue
            try:
                await web_app.expire_session(message["app_path"], message["session_id"])
            except Exception:
                logger.exception("Could not expire session %s of %s", message.get("session_id"), message.get("app_path"))
    finally:
        try:
            await layer.group_discard(CONTROL_GROUP, channel)
        except Exception:
            logger.debug("Could not leave the control group", exc_info=True)
