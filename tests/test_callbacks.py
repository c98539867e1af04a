"""Session callbacks on asyncio: next-tick, timeout and periodic, with locking, curdoc and isolation."""
from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from bokeh.application import Application
from bokeh.application.handlers import FunctionHandler
from bokeh.document import without_document_lock
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, Div

from bokehserver.application_context import ApplicationContext

from waiting import eventually


def _doc_with_div(doc):
    doc.add_root(Div(name="div", text="0"))
    doc.add_root(ColumnDataSource(name="source", data={"x": []}))


@pytest.fixture
async def context():
    ctx = ApplicationContext(Application(FunctionHandler(_doc_with_div)), url="/cb")
    yield ctx
    await ctx.discard_all_sessions()
    await ctx.worker.stop(timeout=1.0)


async def _session(ctx, session_id="s1"):
    return await ctx.create_session_if_needed(session_id)


async def test_periodic_fires_on_its_schedule_and_never_early(context):
    session = await _session(context)
    doc = session.document
    ticks: list[float] = []
    loop = asyncio.get_running_loop()
    added = loop.time()
    doc.add_periodic_callback(lambda: ticks.append(loop.time()), 100)
    await eventually(lambda: len(ticks) >= 5)
    # the k-th tick is due k periods after the callback was added: late under load, never early
    assert all(tick >= added + 0.1 * (k + 1) - 0.002 for k, tick in enumerate(ticks)), (added, ticks)


async def test_timeout_fires_once_and_removal_stops_periodic(context):
    session = await _session(context)
    doc = session.document
    fired: list[str] = []
    doc.add_timeout_callback(lambda: fired.append("timeout"), 300)
    periodic = doc.add_periodic_callback(lambda: fired.append("tick"), 50)
    await eventually(lambda: fired.count("tick") >= 2)
    doc.remove_periodic_callback(periodic)
    ticks_at_removal = fired.count("tick")
    await eventually(lambda: "timeout" in fired)
    # a later timeout proves the loop went on; neither fires again
    doc.add_timeout_callback(lambda: fired.append("later"), 60)
    await eventually(lambda: "later" in fired)
    assert fired.count("timeout") == 1
    assert fired.count("tick") == ticks_at_removal
    assert session.callback_count == 0


async def test_callbacks_change_the_document_under_its_lock_with_curdoc_bound(context):
    session = await _session(context)
    doc = session.document
    seen: list[object] = []

    def bump():
        seen.append(curdoc())
        div = curdoc().select_one({"name": "div"})
        div.text = str(int(div.text) + 1)

    doc.add_next_tick_callback(bump)
    await eventually(lambda: seen)
    await session.with_document_locked(lambda: None)  # bump has let go of the lock
    assert seen == [doc]
    assert doc.select_one({"name": "div"}).text == "1"
    assert not session.expiration_blocked


async def test_periodic_exception_is_logged_and_the_schedule_goes_on(context, caplog):
    session = await _session(context)
    other = await _session(context, "s2")
    calls: list[int] = []

    def boom():
        calls.append(1)
        raise ValueError("boom from app code")

    session.document.add_periodic_callback(boom, 50)
    other_ticks: list[int] = []
    other.document.add_periodic_callback(lambda: other_ticks.append(1), 50)
    def errors():
        return [r for r in caplog.records if "boom from app code" in str(r.exc_info[1] if r.exc_info else "")]

    with caplog.at_level(logging.ERROR, logger="bokehserver"):
        await eventually(lambda: len(errors()) >= 4 and len(other_ticks) >= 4)
        session.document.remove_periodic_callback(session.document.session_callbacks[0])
        await eventually(lambda: len(errors()) == len(calls), what="one ERROR record per failed call")
    assert "/cb" in errors()[0].getMessage() and "s1" in errors()[0].getMessage()


async def test_no_callback_runs_after_destroy_and_hooks_see_none_left(context):
    session = await _session(context)
    ran: list[str] = []
    session.document.add_periodic_callback(lambda: ran.append("p"), 30)
    session.document.add_timeout_callback(lambda: ran.append("t"), 150)
    seen_in_hook: list[int] = []
    session.document.on_session_destroyed(lambda ctx: seen_in_hook.append(session.callback_count))
    await eventually(lambda: "p" in ran)
    assert await context.discard_session(session)
    count = len(ran)
    # another session's timeout, due after the destroyed one's, fires: theirs had their chance
    other = await _session(context, "witness")
    later: list[int] = []
    other.document.add_timeout_callback(lambda: later.append(1), 200)
    await eventually(lambda: later)
    assert len(ran) == count
    assert "t" not in ran
    assert seen_in_hook == [0]
    assert session.destroyed


async def test_without_document_lock_and_coroutine_callbacks(context):
    session = await _session(context)
    doc = session.document
    events: list[str] = []

    @without_document_lock
    async def unlocked():
        events.append(f"unlocked sees proxy: {curdoc() is not doc}")
        assert session._lock.locked() is False
        curdoc().add_next_tick_callback(locked_update)

    async def locked_update():
        await asyncio.sleep(0.01)
        assert curdoc() is doc
        assert session._lock.locked()
        doc.select_one({"name": "div"}).text = "from coroutine"
        events.append("locked")

    doc.add_next_tick_callback(unlocked)
    await eventually(lambda: "locked" in events)
    assert events == ["unlocked sees proxy: True", "locked"]
    assert doc.select_one({"name": "div"}).text == "from coroutine"


async def test_a_thread_hands_work_in_through_next_tick(context):
    session = await _session(context)
    doc = session.document
    source = doc.select_one({"name": "source"})
    done = threading.Event()

    def producer():
        for i in range(5):
            doc.add_next_tick_callback(lambda i=i: source.stream({"x": [i]}))
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    thread.join(2)
    assert done.is_set()
    await eventually(lambda: len(source.data["x"]) == 5)
    assert list(source.data["x"]) == [0, 1, 2, 3, 4]


async def test_callbacks_added_in_modify_doc_start_with_the_session():
    ticks: list[int] = []

    def modify_doc(doc):
        doc.add_root(Div(text="x"))
        doc.add_periodic_callback(lambda: ticks.append(1), 40)

    ctx = ApplicationContext(Application(FunctionHandler(modify_doc)), url="/early")
    try:
        await ctx.create_session_if_needed("early")
        await eventually(lambda: len(ticks) >= 3)
    finally:
        await ctx.discard_all_sessions()
        await ctx.worker.stop(timeout=1.0)


async def test_interleaved_sessions_each_see_their_own_curdoc(context):
    a = await _session(context, "a")
    b = await _session(context, "b")
    mismatches: list[str] = []

    finished: list[str] = []

    def make(doc, label):
        async def step():
            for _ in range(5):
                if curdoc() is not doc:
                    mismatches.append(label)
                await asyncio.sleep(0)
            finished.append(label)
        return step

    for _ in range(3):
        a.document.add_next_tick_callback(make(a.document, "a"))
        b.document.add_next_tick_callback(make(b.document, "b"))
    await eventually(lambda: len(finished) == 6)
    assert mismatches == []


async def test_the_server_callback_classes_bind_to_a_document_and_schedule_like_bokehs(context):
    from bokehserver.callbacks import NextTickCallback, PeriodicCallback, TimeoutCallback

    session = await _session(context)
    doc = session.document
    fired: list[str] = []
    periodic = PeriodicCallback(doc, lambda: fired.append("p"), 40).add()
    timeout = TimeoutCallback(doc, lambda: fired.append("t"), 60, id="my-timeout").add()
    tick = NextTickCallback(doc, lambda: fired.append("n")).add()
    assert (periodic.period, timeout.timeout, timeout.id, tick.document) == (40, 60, "my-timeout", doc)
    assert set(doc.session_callbacks) == {periodic, timeout, tick}
    await eventually(lambda: fired.count("p") >= 2 and "t" in fired)
    periodic.remove()
    count = fired.count("p")
    witness = TimeoutCallback(doc, lambda: fired.append("w"), 100).add()
    await eventually(lambda: "w" in fired)
    assert witness.timeout == 100
    assert fired.count("n") == 1 and fired.count("t") == 1
    assert fired.count("p") == count >= 2
    assert doc.session_callbacks == []
    with pytest.raises(ValueError):
        periodic.remove()
    again = PeriodicCallback(doc, lambda: None, 1000).add()
    doc.remove_periodic_callback(again)
    assert session.callback_count == 0
    with pytest.raises(ValueError):
        PeriodicCallback(doc, lambda: None, 0)


async def test_an_overrunning_periodic_callback_does_not_burst(context):
    session = await _session(context)
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def slow():
        starts.append(loop.time())
        await asyncio.sleep(0.13)

    session.document.add_periodic_callback(slow, 50)
    await eventually(lambda: len(starts) >= 4)
    # a run starts only after the previous one ended: overruns skip ticks, never pile up
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(gap >= 0.125 for gap in gaps), gaps
