"""Keeping Python's full garbage collections short while sessions are served.

A full (generation 2) collection walks every container object in the process and holds the event
loop meanwhile. Django, bokeh, Twisted and the apps' modules leave ~160k such objects at startup,
which never become garbage: walking them made each full collection stall every session for
80-250 ms with a few hundred sessions open.
"""
from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger(__name__)

__all__ = ("freeze_startup_objects",)

_frozen = False


def freeze_startup_objects() -> None:
    """Collect once, then leave every object alive now out of later collections (once per process).

    Sessions' documents are not frozen: their cycles must stay collectable after they expire.
    """
    global _frozen
    if _frozen:
        return
    _frozen = True
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    logger.debug("froze %d startup objects in %.0f ms", gc.get_freeze_count(), (time.perf_counter() - start) * 1e3)
