"""Live state for the admin: one session's document and connections, and each process's figures.

Read directly when the session (or figure) is in this process, over the channel layer from the
process that owns it otherwise (``control.ask``); what could not be asked says so, rather than
showing a guess.
"""
from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import sys
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bokeh.protocol import Protocol

from .frames import message_frames
from .traffic import PROCESS, frames_size

if TYPE_CHECKING:
    from .asgi import BokehASGI
    from .models import BokehSession
    from .session import ServerSession

logger = logging.getLogger(__name__)

__all__ = ("LiveState", "answer", "process_figures", "read_processes", "read_session")

HOST = socket.gethostname()
# How long the admin waits for the process that owns a session, and the dashboard for every process.
SESSION_REPLY_SECONDS = 5.0
PROCESS_REPLY_SECONDS = 0.5
# The event loop lag probe's period.
LAG_PERIOD_SECONDS = 0.25

_protocol = Protocol()


@dataclass
class LiveState:
    """What the owning process said of a session: ``state`` None when it no longer has it."""

    reachable: bool
    state: dict[str, Any] | None = None
    where: str = ""


def _callback(callback: Any) -> dict[str, Any]:
    func = getattr(callback, "callback", None)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    period = getattr(callback, "period", None)
    timeout = getattr(callback, "timeout", None)
    kind = "periodic" if period is not None else "timeout" if timeout is not None else "next tick"
    return {"kind": kind, "name": str(name), "milliseconds": period if period is not None else timeout}


def _describe(session: ServerSession) -> dict[str, Any]:
    """The session's state, read under its lock (so the document holds still)."""
    doc = session.document
    body = message_frames(_protocol.create("PULL-DOC-REPLY", "", doc))[1:]
    traffic = session.traffic
    return {
        "title": doc.title,
        "roots": [{"type": type(root).__name__, "name": root.name or "", "id": root.id} for root in doc.roots],
        "models": len(doc.models),
        "document_bytes": frames_size(body),
        "callbacks": [_callback(callback) for callback in doc.session_callbacks],
        "connections": [
            {"remote_address": c.remote_address, "user_agent": c.user_agent, "opened_at": c.opened_at}
            for c in session.connections
        ],
        "messages_in": traffic.messages_in, "messages_out": traffic.messages_out,
        "bytes_in": traffic.bytes_in, "bytes_out": traffic.bytes_out,
        "owner": session.owner,
    }


async def describe_session(web_app: BokehASGI, app_path: str, session_id: str) -> dict[str, Any] | None:
    """This process's session ``session_id`` of ``app_path`` as a plain dict, or None if it has none such."""
    context = web_app.context_for(app_path)
    session = context.find_session(session_id) if context is not None else None
    if session is None or session.destroyed:
        return None
    return await session.with_document_locked_on_loop(_describe, session)


async def read_session(record: BokehSession, web_app: BokehASGI | None,
                       reply_seconds: float = SESSION_REPLY_SECONDS) -> LiveState:
    """The live state of the session behind ``record``, from whichever process holds it."""
    from . import control

    where = f"{record.host}:{record.pid}"
    if web_app is not None and record.host == HOST and record.pid == os.getpid():
        return LiveState(True, await describe_session(web_app, record.app_path, record.session_id), "this process")
    try:
        answers = await control.ask({"what": "session", "app_path": record.app_path, "session_id": record.session_id},
                                    host=record.host, pid=record.pid, reply_seconds=reply_seconds)
    except Exception as exc:
        logger.warning("Could not ask %s for session %s: %r", where, record.session_id, exc)
        answers = None
    if not answers:
        return LiveState(False, None, where)
    return LiveState(True, answers[0].get("session"), where)


class _LagProbe:
    """Measures how late the event loop wakes a sleeper: the worst of the last second."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        keep = max(1, round(1.0 / LAG_PERIOD_SECONDS))
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_PERIOD_SECONDS)
            self.samples = [*self.samples[-(keep - 1):], max(0.0, loop.time() - start - LAG_PERIOD_SECONDS)]

    @property
    def lag(self) -> float | None:
        return max(self.samples) if self.samples else None


_probes: weakref.WeakKeyDictionary[Any, _LagProbe] = weakref.WeakKeyDictionary()


def _probe(web_app: BokehASGI) -> _LagProbe:
    """The lag probe of ``web_app``, started on first use as one of its worker's tasks."""
    probe = _probes.get(web_app)
    if probe is None:
        probe = _probes[web_app] = _LagProbe()
        web_app.worker.spawn(probe.run(), name="event-loop-lag")
    return probe


def _memory_bytes() -> int:
    """The process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def process_figures(web_app: BokehASGI) -> dict[str, Any]:
    """This process's sessions and connections per app, message counts, loop lag and memory."""
    apps = {}
    for route, context in web_app.application_contexts.items():
        sessions = context.sessions
        apps[route] = {"sessions": len(sessions), "connections": sum(s.connection_count for s in sessions)}
    return {
        "worker": f"{HOST}:{os.getpid()}", "time": time.time(), "apps": apps,
        "messages": PROCESS.messages_in + PROCESS.messages_out,
        "bytes": PROCESS.bytes_in + PROCESS.bytes_out,
        "loop_lag_ms": None if _probe(web_app).lag is None else _probe(web_app).lag * 1000.0,
        "memory_bytes": _memory_bytes(),
    }


async def read_processes(web_app: BokehASGI, reply_seconds: float = PROCESS_REPLY_SECONDS) -> list[dict[str, Any]]:
    """The figures of this process and of every other process that answers within ``reply_seconds``."""
    from . import control

    figures = [process_figures(web_app)]
    try:
        figures += await control.ask({"what": "process"}, host="*", replies=None, reply_seconds=reply_seconds) or []
    except Exception as exc:
        logger.warning("Could not ask the other server processes for their figures: %r", exc)
    return sorted(figures, key=lambda f: str(f.get("worker")))


async def answer(web_app: BokehASGI, request: dict[str, Any]) -> dict[str, Any]:
    """Answer an INSPECT request from another process (``control``)."""
    try:
        if request.get("what") == "process":
            return process_figures(web_app)
        return {"session": await describe_session(web_app, str(request.get("app_path")), str(request.get("session_id")))}
    except Exception:
        logger.exception("Could not answer an inspection request %r", request.get("what"))
        return {}
