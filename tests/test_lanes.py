"""Session lanes: all of one session's sync app code on one thread, sessions in parallel."""
from __future__ import annotations

import asyncio
import gc
import threading

import pytest
from bokeh.application import Application
from bokeh.application.handlers import FunctionHandler
from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.models import Div, Slider

from bokehserver import app_code
from bokehserver.app_code import Lane, use_threads
from bokehserver.application_context import ApplicationContext
from waiting import eventually

CHANGES = 6


@pytest.fixture
def threads(monkeypatch):
    """Set the app-code thread count for one test; the settings' count comes back afterwards."""
    monkeypatch.setattr(app_code, "_threads", None)

    def set_count(count: int) -> app_code._Pool:
        use_threads(count)
        return app_code._executor()

    yield set_count
    use_threads(app_code.conf.get("APP_CODE_THREADS"))
    monkeypatch.setattr(app_code, "_threads", None)


def sqlite_app(threads_seen: dict[str, set[int]]) -> Application:
    """An app whose document keeps a sqlite3 connection made while building it (thread-bound)."""
    import sqlite3

    connections: dict[str, sqlite3.Connection] = {}

    def destroyed(ctx) -> None:
        threads_seen[ctx.id].add(threading.get_ident())
        connections.pop(ctx.id).close()  # on the thread that made it, as sqlite3 requires

    class Hooks(LifecycleHandler):
        def __init__(self) -> None:
            super().__init__()
            self._on_session_created = lambda ctx: threads_seen.setdefault(ctx.id, set()).add(threading.get_ident())
            self._on_session_destroyed = destroyed

    def modify_doc(doc):
        session_id = doc.session_context.id
        threads_seen[session_id].add(threading.get_ident())
        db = connections[session_id] = sqlite3.connect(":memory:")
        db.execute("create table changes (value integer)")
        slider = Slider(start=0, end=100, value=0, step=1, name="slider")
        out = Div(name="out", text="0 0")

        def changed(attr, old, new):
            threads_seen[session_id].add(threading.get_ident())
            db.execute("insert into changes values (?)", (new,))
            count, total = db.execute("select count(*), sum(value) from changes").fetchone()
            out.text = f"{count} {total}"

        slider.on_change("value", changed)
        doc.add_root(slider)
        doc.add_root(out)

    return Application(Hooks(), FunctionHandler(modify_doc))


async def _change_six_times(session) -> None:
    slider = session.document.select_one({"name": "slider"})
    for value in range(1, CHANGES + 1):
        await session.with_document_locked(setattr, slider, "value", value)
        await asyncio.sleep(0)


@pytest.mark.parametrize("count", [8, 2], ids=["a-thread-each", "more-sessions-than-threads"])
async def test_a_thread_bound_resource_works_in_every_callback_of_sessions_running_at_once(threads, count):
    pool = threads(count)
    seen: dict[str, set[int]] = {}
    ctx = ApplicationContext(sqlite_app(seen), url="/sqlite")
    sessions = await asyncio.gather(*(ctx.create_session_if_needed(f"s{i}") for i in range(4)))
    await asyncio.gather(*(_change_six_times(s) for s in sessions))
    expected = f"{CHANGES} {sum(range(1, CHANGES + 1))}"
    assert [s.document.select_one({"name": "out"}).text for s in sessions] == [expected] * 4
    assert pool.lanes()[:count] == ([1] * 4 + [0] * (count - 4) if count >= 4 else [2] * count)
    await ctx.discard_all_sessions()
    await ctx.worker.stop(timeout=2.0)
    # hooks, modify_doc and every on_change ran on one thread per session
    assert all(len(idents) == 1 for idents in seen.values()), seen
    if count >= 4:
        assert len({next(iter(idents)) for idents in seen.values()}) == 4  # in parallel, not one thread
    assert pool.lanes() == [0] * count  # every lane given back


async def test_session_callbacks_and_nolock_callbacks_run_on_the_session_thread(threads):
    from bokeh.document import without_document_lock

    threads(4)
    seen: dict[str, set[int]] = {}
    ctx = ApplicationContext(sqlite_app(seen), url="/cbs")
    session = await ctx.create_session_if_needed("cb")
    ran: list[int] = []

    @without_document_lock
    def unlocked():
        ran.append(threading.get_ident())

    session.document.add_next_tick_callback(lambda: ran.append(threading.get_ident()))
    session.document.add_timeout_callback(lambda: ran.append(threading.get_ident()), 10)
    session.document.add_next_tick_callback(unlocked)
    await eventually(lambda: len(ran) == 3)
    assert set(ran) == seen["cb"]
    await ctx.discard_all_sessions()
    await ctx.worker.stop(timeout=2.0)


async def test_server_hooks_and_server_callbacks_share_the_apps_thread(threads):
    threads(4)
    ran: list[int] = []

    class Hooks(LifecycleHandler):
        def __init__(self) -> None:
            super().__init__()
            self._on_server_loaded = self.loaded

        def loaded(self, server_context):
            ran.append(threading.get_ident())
            server_context.add_next_tick_callback(lambda: ran.append(threading.get_ident()))

    ctx = ApplicationContext(Application(Hooks(), FunctionHandler(lambda doc: doc.add_root(Div()))), url="/srv")
    await ctx.run_load_hook()
    await eventually(lambda: len(ran) == 2)
    assert len(set(ran)) == 1 and ran[0] != threading.get_ident()
    ctx.server_callbacks.reset()
    await ctx.worker.stop(timeout=2.0)


async def test_a_build_cancelled_midway_gives_its_lane_back(threads):
    pool = threads(2)
    building, release = threading.Event(), threading.Event()

    def slow(doc):
        building.set()
        release.wait(30)

    ctx = ApplicationContext(Application(FunctionHandler(slow)), url="/slow")
    task = asyncio.ensure_future(ctx.create_session_if_needed("s"))
    await eventually(building.is_set)
    task.cancel()  # the page's client went away while the app was building
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert ctx.sessions == [] and pool.lanes() == [0, 0]
    await ctx.worker.stop(timeout=2.0)


def _in_thread_within(seconds: float, work) -> bool:
    """Run ``work`` on a daemon thread; whether it finished within ``seconds`` (a deadlock fails, never hangs)."""
    done = threading.Event()

    def run():
        work()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


async def test_releasing_a_lane_never_waits_for_the_pool_lock(threads):
    pool = threads(2)
    lane = Lane()
    await lane.run(threading.get_ident)
    assert pool.lanes() == [1, 0]

    def release_while_the_pool_is_locked():
        with pool._lock:  # where a garbage collection may run a finalizer: any allocation under the lock
            lane.release()
            lane.release()  # twice counts once

    assert _in_thread_within(10, release_while_the_pool_is_locked), "release blocked on the pool lock"
    assert pool.lanes() == [0, 0]


async def test_a_lane_collected_while_the_pool_lock_is_held_is_given_back(threads):
    pool = threads(2)

    class Owner:  # a session-like object in a reference cycle: only the cycle collector frees it
        pass

    owner = Owner()
    owner.me, owner.lane = owner, Lane()
    await owner.lane.run(threading.get_ident)
    assert pool.lanes() == [1, 0]
    del owner

    def collect_while_the_pool_is_locked():
        with pool._lock:
            gc.collect()

    assert _in_thread_within(10, collect_while_the_pool_is_locked), "the lane's finalizer blocked on the pool lock"
    assert pool.lanes() == [0, 0]
