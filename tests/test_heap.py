"""Startup objects leave full garbage collections; what sessions make later stays collectable."""
from __future__ import annotations

import gc
import weakref

import pytest

from bokehserver import heap
from bokehserver.asgi import BokehASGI


class Cycle:
    def __init__(self) -> None:
        self.me = self


def walked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def unfrozen(monkeypatch):
    gc.unfreeze()
    monkeypatch.setattr(heap, "_frozen", False)
    yield
    gc.unfreeze()


def test_objects_alive_at_startup_are_left_out_of_full_collections(unfrozen):
    startup = Cycle()
    assert walked(startup)
    heap.freeze_startup_objects()
    assert gc.get_freeze_count() > 1000 and not walked(startup)
    later = Cycle()
    assert walked(later)
    heap.freeze_startup_objects()  # once per process: later objects stay walked
    assert walked(later)


def test_cycles_made_after_startup_are_still_collected(unfrozen):
    heap.freeze_startup_objects()
    garbage = Cycle()
    gone = weakref.ref(garbage)
    del garbage
    gc.collect()
    assert gone() is None


async def test_the_web_application_freezes_when_it_starts(unfrozen):
    web_app = BokehASGI({"/app": lambda doc: None})
    assert gc.get_freeze_count() == 0
    web_app.start()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        await web_app.stop()
