"""Startup objects leave full garbage collections; what sessions make later stays collectable."""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from bokeh.application import Application
from bokeh.application.handlers import FunctionHandler, ScriptHandler
from bokeh.models import Div

from bokehserver import heap
from bokehserver.application_context import ApplicationContext
from bokehserver.asgi import BokehASGI

from waiting import eventually

SLIDERS = Path(__file__).resolve().parent.parent / "examples" / "sliders.py"


class Cycle:
    def __init__(self) -> None:
        self.me = self


def walked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def unfrozen(monkeypatch):
    gc.unfreeze()
    monkeypatch.setattr(heap, "_frozen", False)
    monkeypatch.setattr(heap, "_ended_count", 0)
    yield
    gc.unfreeze()


@pytest.fixture
def collector_off():
    """No collection runs unless a test asks for one: what frees an object here is reference counting."""
    gc.disable()
    yield
    gc.enable()


async def _sessions(ctx: ApplicationContext, count: int) -> list[tuple[weakref.ref, list[weakref.ref]]]:
    made = []
    for index in range(count):
        session = await ctx.create_session_if_needed(f"s{index}")
        assert heap.freeze_pending() > 0 and session.heap_share > 0
        made.append((weakref.ref(session.document), [weakref.ref(m) for m in session.document.models]))
        session.request_expiration()
    return made


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


async def test_an_expired_sessions_frozen_document_and_models_are_freed_without_a_reclaim(unfrozen):
    heap.freeze_startup_objects()
    ctx = ApplicationContext(Application(ScriptHandler(filename=str(SLIDERS))), url="/sliders")
    try:
        made = await _sessions(ctx, 3)
        assert not any(walked(document()) for document, _ in made)  # frozen out of whole collections
        assert await ctx.cleanup_sessions(15000) == 3

        def freed() -> bool:
            gc.collect()  # only what is not frozen (a thread's last frame, a traceback), never a frozen cycle
            return not [ref for document, models in made for ref in (document, *models) if ref() is not None]

        await eventually(freed, what="every document and model of the expired sessions freed")
    finally:
        await ctx.worker.stop(timeout=1.0)


class Holder:
    """An app's own cycle around its document: only a whole collection frees it."""

    def __init__(self, doc) -> None:
        self.me = self
        self.doc = doc


def holding_app(doc) -> None:
    holder = Holder(doc)
    div = Div()
    div.on_change("text", lambda attr, old, new: holder)  # alive while the session is: frozen with it
    doc.add_root(div)


async def test_ended_sessions_that_stay_alive_in_frozen_cycles_are_reclaimed(unfrozen, collector_off, monkeypatch):
    monkeypatch.setattr(heap, "RECLAIM_SHARE", 0.0)
    heap.freeze_startup_objects()
    ctx = ApplicationContext(Application(FunctionHandler(holding_app)), url="/app")
    try:
        reclaims = heap.stats()["reclaims"]
        [(document, _)] = await _sessions(ctx, 1)
        await ctx.create_session_if_needed("held")
        heap.freeze_pending()
        assert heap.stats()["reclaims"] == reclaims  # sessions held open never cost a whole collection
        assert await ctx.cleanup_sessions(15000) == 1
        assert document() is not None and heap.stats()["ended"] > 0
        await ctx.create_session_if_needed("next")
        heap.freeze_pending()  # the next freeze collects first
        assert document() is None and heap.stats()["ended"] == 0
        assert heap.stats()["reclaims"] == reclaims + 1
    finally:
        await ctx.discard_all_sessions()
        await ctx.worker.stop(timeout=1.0)


async def test_sessions_are_not_frozen_in_a_process_that_froze_nothing(unfrozen):
    ctx = ApplicationContext(Application(FunctionHandler(lambda doc: None)), url="/app")
    try:
        session = await ctx.create_session_if_needed("s")
        assert session.heap_share == 0 and walked(session.document)
    finally:
        await ctx.discard_all_sessions()
        await ctx.worker.stop(timeout=1.0)


async def test_a_session_is_frozen_a_moment_after_its_build_without_what_its_request_left(unfrozen, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_DELAY_SECONDS", 0.01)
    heap.freeze_startup_objects()
    ctx = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Div()))), url="/app")
    try:
        request = Cycle()  # what a page request leaves in cycles, alive while the session is built
        leftover = weakref.ref(request)
        session = await ctx.create_session_if_needed("s")
        assert session.heap_share == 0 and walked(session.document)  # not frozen with the request alive
        del request
        await eventually(lambda: session.heap_share > 0, what="the session frozen by the timer")
        assert not walked(session.document) and leftover() is None  # the request's cycle collected, not frozen
    finally:
        await ctx.discard_all_sessions()
        await ctx.worker.stop(timeout=1.0)


async def test_sessions_built_in_a_burst_are_frozen_in_batches_without_waiting(unfrozen, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_DELAY_SECONDS", 3600.0)
    monkeypatch.setattr(heap, "FREEZE_BATCH", 3)
    heap.freeze_startup_objects()
    ctx = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Div()))), url="/app")
    try:
        sessions = [await ctx.create_session_if_needed(f"s{index}") for index in range(4)]
        assert [session.heap_share > 0 for session in sessions] == [True, True, True, False]
        assert not walked(sessions[0].document) and walked(sessions[3].document)
    finally:
        heap.freeze_pending()
        await ctx.discard_all_sessions()
        await ctx.worker.stop(timeout=1.0)
