"""App code and Django's ORM: sync code off the loop on its session's thread, async code on the loop."""
from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from bokeh.application import Application
from bokeh.application.handlers import FunctionHandler
from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.io import curdoc
from bokeh.models import Div
from django.conf import settings
from django.db import connection

from bokehserver import app_code
from bokehserver.app_code import is_async_callable, run_app_code, thread_count, use_threads
from bokehserver.application_context import ApplicationContext
from examples.measurements.models import Measurement
from waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)


def _open_db_files() -> int:
    """How many connections this process holds to the test database (SQLite files, or PostgreSQL sockets)."""
    if connection.vendor == "postgresql":
        import psutil

        port = int(connection.settings_dict["PORT"] or 5432)
        return sum(1 for c in psutil.Process().net_connections(kind="inet") if c.raddr and c.raddr.port == port)
    name = os.path.realpath(connection.settings_dict["NAME"])
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.path.realpath(os.readlink(f"/proc/self/fd/{fd}")) == name:
                count += 1
        except OSError:
            pass
    return count


async def _stop(ctx: ApplicationContext) -> None:
    await ctx.discard_all_sessions()
    await ctx.worker.stop(timeout=2.0)


async def test_orm_in_modify_doc_and_in_hooks():
    await Measurement.objects.acreate(value=1.5, label="seed")
    seen: dict[str, object] = {}

    class Hooks(LifecycleHandler):
        def __init__(self):
            super().__init__()
            self._on_session_created = lambda ctx: seen.setdefault("created", Measurement.objects.count())
            self._on_session_destroyed = lambda ctx: seen.setdefault("destroyed", Measurement.objects.filter(label="seed").count())

    def modify_doc(doc):
        seen["thread"] = threading.current_thread().name
        doc.add_root(Div(name="d", text=f"{Measurement.objects.count()} rows"))

    ctx = ApplicationContext(Application(Hooks(), FunctionHandler(modify_doc)), url="/orm")
    session = await ctx.create_session_if_needed("orm1")
    assert session.document.select_one({"name": "d"}).text == "1 rows"
    assert seen["created"] == 1
    assert seen["thread"] != threading.current_thread().name
    await _stop(ctx)
    assert seen["destroyed"] == 1


async def test_orm_in_callbacks_and_async_orm_in_coroutine_callbacks():
    ctx = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Div(name="d")))), url="/cb")
    session = await ctx.create_session_if_needed("cb1")
    doc = session.document
    div = doc.select_one({"name": "d"})

    def sync_tick():
        Measurement.objects.create(value=2.0, label="periodic")
        div.text = f"{Measurement.objects.count()} rows"

    async def async_tick():
        await Measurement.objects.acreate(value=3.0, label="async")
        div.text = f"{await Measurement.objects.acount()} rows (async)"

    periodic = doc.add_periodic_callback(sync_tick, 30)
    await eventually(lambda: div.text.endswith(" rows") and int(div.text.split()[0]) >= 3)
    doc.remove_periodic_callback(periodic)
    assert await Measurement.objects.filter(label="periodic").acount() >= 2
    doc.add_next_tick_callback(async_tick)
    await eventually(lambda: div.text.endswith("(async)"))
    assert div.text == f"{await Measurement.objects.acount()} rows (async)"
    await _stop(ctx)


async def test_two_sessions_threads_interleave_with_their_own_curdoc():
    ctx = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Div(name="d")))), url="/il")
    a = await ctx.create_session_if_needed("a")
    b = await ctx.create_session_if_needed("b")
    wrong: list[str] = []
    overlap = threading.Barrier(2, timeout=60)

    def make(doc, label):
        def work():
            overlap.wait()  # both sessions' threads are inside app code at the same moment
            for _ in range(20):
                if curdoc() is not doc:
                    wrong.append(label)
                time.sleep(0.001)
            curdoc().select_one({"name": "d"}).text = label
        return work

    await asyncio.gather(
        a.with_document_locked(make(a.document, "a")),
        b.with_document_locked(make(b.document, "b")),
    )
    assert wrong == []
    assert a.document.select_one({"name": "d"}).text == "a"
    assert b.document.select_one({"name": "d"}).text == "b"
    await _stop(ctx)


async def test_a_blocking_callback_delays_only_its_own_session():
    ctx = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Div(name="d")))), url="/block")
    slow = await ctx.create_session_if_needed("slow")
    fast = await ctx.create_session_if_needed("fast")
    blocking, release = threading.Event(), threading.Event()

    def block():
        blocking.set()
        release.wait(30)

    slow.document.add_next_tick_callback(block)
    await eventually(blocking.is_set)
    try:
        # the slow session's code holds its thread until released: the fast one must not wait for it
        await asyncio.wait_for(
            fast.with_document_locked(lambda: setattr(fast.document.select_one({"name": "d"}), "text", "done")),
            timeout=20,
        )
        assert fast.document.select_one({"name": "d"}).text == "done"
        assert not release.is_set()
    finally:
        release.set()
    await _stop(ctx)


async def test_thousand_callbacks_leave_no_database_connection_open():
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    ctx = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Div(name="d")))), url="/conn")
    sessions = [await ctx.create_session_if_needed(f"c{i}") for i in range(4)]
    before = await asyncio.to_thread(_open_db_files)
    done = [0]

    def query():
        Measurement.objects.exists()
        done[0] += 1

    for i in range(1000):
        sessions[i % 4].document.add_next_tick_callback(query)
    await eventually(lambda: done[0] == 1000, timeout=60)
    # a callback's thread closes its connection just after the callback returns: wait for that
    await eventually(lambda: _open_db_files() <= before, what="no database connection left open by app code")
    await _stop(ctx)


async def test_sync_app_code_runs_off_the_loop_with_the_callers_context():
    from contextvars import ContextVar

    var: ContextVar[str] = ContextVar("var", default="unset")
    var.set("from the caller")
    loop_thread = threading.get_ident()
    thread, seen = await run_app_code(lambda: (threading.get_ident(), var.get()))
    assert thread != loop_thread and seen == "from the caller"

    async def on_the_loop():
        return threading.get_ident()

    assert await run_app_code(on_the_loop) == loop_thread


async def test_zero_threads_runs_sync_app_code_on_the_loop(monkeypatch):
    monkeypatch.setattr(app_code, "_threads", None)  # back to the settings after the test
    with pytest.raises(ValueError):
        use_threads(-1)
    use_threads(0)
    assert thread_count() == 0
    loop_thread = threading.get_ident()

    def modify_doc(doc):
        doc.add_root(Div(name="d", text=str(threading.get_ident() == loop_thread)))

    ctx = ApplicationContext(Application(FunctionHandler(modify_doc)), url="/on-loop")
    try:
        session = await ctx.create_session_if_needed("loop1")
        assert session.document.select_one({"name": "d"}).text == "True"
        seen = await session.with_document_locked(lambda: (threading.get_ident(), curdoc()))
        assert seen == (loop_thread, session.document)
    finally:
        await _stop(ctx)
    use_threads(2)
    assert await run_app_code(threading.get_ident) != loop_thread


async def test_many_calls_at_once_each_get_their_own_result_or_error():
    def work(i):
        if i % 7 == 0:
            raise ValueError(f"call {i}")
        time.sleep(0.0005)
        return i * i

    outcomes = await asyncio.gather(*(run_app_code(work, i) for i in range(200)), return_exceptions=True)
    for i, outcome in enumerate(outcomes):
        if i % 7 == 0:
            assert isinstance(outcome, ValueError) and str(outcome) == f"call {i}"
        else:
            assert outcome == i * i


def test_a_result_for_a_closed_loop_is_dropped_and_the_pool_keeps_working():
    pool = app_code._Pool(1)  # one thread: jobs finish in order
    slot = pool.assign()
    release = threading.Event()
    closed = asyncio.new_event_loop()

    async def submit():
        return pool.run(slot, lambda: release.wait(5) and "late")

    orphan = closed.run_until_complete(submit())
    closed.close()  # a server stopped while its app code still ran
    release.set()

    async def next_job():
        return await pool.run(slot, lambda: "fresh")

    try:
        assert asyncio.run(next_job()) == "fresh"
        assert closed not in pool._done and not orphan.done()
    finally:
        pool.shutdown()


def test_is_async_callable_sees_through_wraps():
    import functools

    async def coro():
        return 1

    @functools.wraps(coro)
    def wrapper():
        return coro()

    assert is_async_callable(wrapper)
    assert not is_async_callable(lambda: None)


def test_only_threads_that_opened_a_database_connection_look_for_ones_to_recycle(monkeypatch):
    from django.db import connections
    from django.db.backends.signals import connection_created

    looked: list[str] = []
    monkeypatch.setattr(connections, "all", lambda initialized_only=False: looked.append(threading.current_thread().name) or [])

    def recycle(connects: bool) -> None:
        if connects:
            connection_created.send(sender=type(connection), connection=connection)
        app_code._recycle_connections()

    for name, connects in (("quiet", False), ("connected", True)):
        thread = threading.Thread(target=recycle, args=(connects,), name=name)
        thread.start()
        thread.join()
    assert looked == ["connected"]
