"""Keeping Python's full garbage collections short while sessions are served.

A full (generation 2) collection walks every container object in the process and holds the event
loop meanwhile. Django, bokeh, Twisted and the apps' modules leave ~160k such objects at startup,
and every open sliders session ~230 more: walking them stalled every session for 80-250 ms with a
few hundred sessions open, and ~300 ms with 1,000.

So nothing long-lived is walked: startup objects are frozen once (``gc.freeze``), and each new
session's document right after it is built. Frozen objects are still freed by reference counting,
but a cycle among them is never collected: when a session ends, ``_compat.release_models`` breaks
its document's cycles so that counting frees it. Frozen garbage left by an app's own cycles around
its models is bounded: when the ended sessions whose documents are still alive froze more than a
quarter of all frozen objects, the next freeze first thaws everything and runs one whole
collection (``reclaim``).
"""
from __future__ import annotations

import gc
import logging
import time
import weakref
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ("freeze_session", "freeze_startup_objects", "release_session", "stats")

# frozen objects of ended sessions that are still alive, as a share of all frozen objects, that makes
# the next freeze reclaim them with one whole collection
RECLAIM_SHARE = 0.25

_frozen = False
# objects frozen, as counted when they were: ``gc.get_freeze_count()`` walks them all (~20 ms for 160k)
_frozen_count = 0
# the documents of ended sessions that were frozen, and how many objects each session froze
_released: list[tuple[weakref.ref[Any], int]] = []
_reclaims = 0


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


def freeze_session() -> int:
    """After a session is built: freeze what is alive and not frozen yet; return how many objects.

    The collection first walks only the objects made since the last freeze (about one session's),
    so no garbage is frozen. Does nothing (returns 0) in a process that did not freeze its startup
    objects: tests and code that embeds sessions without serving them keep Python's usual collector.
    """
    global _frozen_count
    if not _frozen:
        return 0
    if leaked() > RECLAIM_SHARE * _frozen_count:
        reclaim()
    gc.collect()
    share = len(gc.get_objects())
    gc.freeze()
    _frozen_count += share
    return share


def release_session(document: Any, share: int) -> None:
    """A session that froze ``share`` objects has ended and its document's cycles are broken.

    Reference counting should free the document now; if something still holds it, its share
    counts as leaked until a reclaim.
    """
    global _frozen_count
    if share:
        _frozen_count = max(0, _frozen_count - share)
        _released.append((weakref.ref(document), share))


def leaked() -> int:
    """Frozen objects of ended sessions whose document is still alive (forgetting those that died)."""
    _released[:] = [(document, share) for document, share in _released if document() is not None]
    return sum(share for _, share in _released)


def reclaim() -> None:
    """Thaw every object, collect once (a whole-heap pause), freeze what survived."""
    global _frozen_count, _reclaims
    start = time.perf_counter()
    suspect = leaked()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _released.clear()
    _frozen_count = gc.get_freeze_count()
    _reclaims += 1
    logger.info("reclaimed what %d frozen objects of ended sessions held, in %.0f ms; %d objects frozen",
                suspect, (time.perf_counter() - start) * 1e3, _frozen_count)


def stats() -> dict[str, int]:
    """Objects frozen (as counted when frozen), objects of ended sessions still alive, reclaims run."""
    return {"frozen": _frozen_count, "leaked": leaked(), "reclaims": _reclaims}
