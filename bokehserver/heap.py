"""Keeping Python's full garbage collections short while sessions are served.

A full (generation 2) collection walks every container object in the process and holds the event
loop meanwhile. Django, bokeh, Twisted and the apps' modules leave ~160k such objects at startup,
and every open sliders session ~230 more: walking them stalled every session for 80-250 ms with a
few hundred sessions open, and ~300 ms with 1,000.

So nothing long-lived is walked: startup objects are frozen once (``gc.freeze``), and new
sessions' documents in batches, a second after they are built. Frozen objects are still freed by
reference counting, but a cycle among them is never collected: when a session ends,
``_compat.release_models`` breaks its document's cycles so that counting frees it. What else was
frozen with a session (requests and sockets in flight at the freeze, an app's own cycles around
its models) can be garbage only
a whole collection frees: once the sessions that ended since the last one froze a quarter of all
frozen objects, the next freeze first thaws everything and collects once (``reclaim``). Sessions
held open never cause one; churning sessions cause them about as often as CPython's own policy.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ("freeze_later", "freeze_pending", "freeze_startup_objects", "release_session", "stats")

# objects frozen with sessions that have ended since the last whole collection, as a share of all
# frozen objects, that makes the next freeze reclaim what of them is garbage (CPython's own policy
# runs a full collection when the objects that survived into the old generation grow by 25 %)
RECLAIM_SHARE = 0.25
# how long after a session is built it is frozen (its page request is answered by then), unless
# this many wait already (their objects would make young collections long while they wait). The
# freeze's own collection walks the waiting sessions: with 64 it was the longest pause while 1,000
# sliders sessions were built (16-22 ms), with 32 it is 6 ms, for ~5 KiB more RSS per session
# (requests in flight frozen twice as often in a burst; bench/RESULTS.md, ninth round)
FREEZE_DELAY_SECONDS = 1.0
FREEZE_BATCH = 32

_frozen = False
# objects frozen, as counted when they were (``gc.get_freeze_count()`` walks them all: ~20 ms for 160k)
_frozen_count = 0
# objects frozen with sessions that ended since the last whole collection
_ended_count = 0
_reclaims = 0
# sessions built since the last freeze, and the timer (with its loop) that freezes them
_pending: list[weakref.ref[Any]] = []
_timer: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None


def freeze_startup_objects() -> None:
    """Collect once, then leave every object alive now out of later collections (once per process)."""
    global _frozen, _frozen_count
    if _frozen:
        return
    _frozen = True
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    _frozen_count = gc.get_freeze_count()
    logger.debug("froze %d startup objects in %.0f ms", _frozen_count, (time.perf_counter() - start) * 1e3)


def freeze_later(session: Any) -> None:
    """After a session is built: freeze it with the next batch, ``FREEZE_DELAY_SECONDS`` from now.

    Not at once: the page request that built it is still alive then, and whatever of it ends in
    reference cycles (Django's request, the asgiref and Twisted objects around it) would be frozen
    with it and never collected. A second later that request is answered, and one freeze serves
    every session built meanwhile; in a burst, the ``FREEZE_BATCH``-th waiting session freezes them
    all at once. Does nothing in a process that did not freeze its startup objects: tests and code
    that embeds sessions without serving them keep Python's usual collector.
    """
    global _timer
    if not _frozen:
        return
    _pending.append(weakref.ref(session))
    if len(_pending) >= FREEZE_BATCH:
        freeze_pending()  # requests in flight frozen once per batch of sessions, not once per session
        return
    loop = asyncio.get_running_loop()
    if _timer is None or _timer[0] is not loop or loop.is_closed():
        _timer = (loop, loop.call_later(FREEZE_DELAY_SECONDS, freeze_pending))


def freeze_pending() -> int:
    """Freeze what is alive and not frozen yet, shared among the sessions built since the last freeze.

    The collection first walks only the objects made since the last freeze, so no garbage is
    frozen. Returns how many objects were frozen (0 when no session waited).
    """
    global _frozen_count, _timer
    if _timer is not None:
        _timer[1].cancel()
        _timer = None
    sessions = [session for session in (ref() for ref in _pending) if session is not None and not session.destroyed]
    _pending.clear()
    if not sessions:
        return 0
    if _ended_count > RECLAIM_SHARE * _frozen_count:
        reclaim()
    gc.collect()
    share = len(gc.get_objects())
    gc.freeze()
    _frozen_count += share
    for session in sessions:
        session.heap_share = share // len(sessions)
    return share


def release_session(share: int) -> None:
    """A session that froze ``share`` objects has ended (its document's cycles broken).

    Reference counting frees its document; what else was frozen with it (the requests and
    sockets in flight then) may be cycles only a whole collection frees: counted for ``reclaim``.
    """
    global _ended_count
    _ended_count += share


def reclaim() -> None:
    """Thaw every object, collect once (a whole-heap pause), freeze what survived."""
    global _frozen_count, _ended_count, _reclaims
    start = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _frozen_count, _ended_count = gc.get_freeze_count(), 0
    _reclaims += 1
    logger.info("reclaimed the frozen garbage of ended sessions in %.0f ms; %d objects frozen",
                (time.perf_counter() - start) * 1e3, _frozen_count)


def stats() -> dict[str, int]:
    """Objects frozen (as counted when frozen), those frozen with sessions ended since, reclaims run."""
    return {"frozen": _frozen_count, "ended": _ended_count, "reclaims": _reclaims}
