"""The real ``bokeh.client`` against a real ``runbokeh`` (daphne) serving the example apps."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import psutil
import pytest
from bokeh.client import ClientSession, pull_session
from tornado.ioloop import IOLoop

from cpu_cores import one_core, thread_cores
from waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("hard_timeout")]

WAIT_SECONDS = 30.0  # bounds a failure only


@pytest.fixture(scope="module")
def server(bokeh_server_factory):
    """One server for the module, serving the settings' apps (/sliders, /dirapp, /widgets)."""
    return bokeh_server_factory()


@contextlib.contextmanager
def client_sessions(url_for: Callable[[str], str]) -> Iterator[Callable[..., ClientSession]]:
    """Pull sessions on one IOLoop owned by the caller; close them and the loop afterwards."""
    # Not made current: IOLoop() would call asyncio.get_event_loop(), which creates (and then leaks)
    # a loop of its own when none is set.
    io_loop = IOLoop(make_current=False)
    sessions: list[ClientSession] = []

    def open_(app: str = "sliders", **kwargs: Any) -> ClientSession:
        session = pull_session(url=url_for(app), io_loop=io_loop, **kwargs)
        sessions.append(session)
        return session

    try:
        yield open_
    finally:
        for session in sessions:
            if session.connected:
                # Closed from inside the loop: outside it tornado would make an asyncio loop of its own.
                io_loop.add_callback(session.close)
                pump_until(session, lambda: False, timeout=5.0)
        io_loop.close(all_fds=True)


@pytest.fixture
def open_session(server) -> Iterator[Callable[..., ClientSession]]:
    with client_sessions(server.app_url) as open_:
        yield open_


def pump_until(session: ClientSession, predicate: Callable[[], object], timeout: float = WAIT_SECONDS) -> bool:
    """Let ``session`` apply the server's PATCH-DOCs until ``predicate()`` holds, the socket closes or time runs out.

    bokeh.client reads the socket only while one of its blocking calls runs its IOLoop, and
    ``force_roundtrip()`` drops every PATCH-DOC that arrives while it waits for its reply, so this
    drives the connection's own loop (the private ``_loop_until``; bokeh has no public equivalent).
    Queued outgoing PATCH-DOCs of every session on the same IOLoop are sent on the way.
    """
    connection = session._connection
    expired = False
    failures: list[Exception] = []

    def expire() -> None:
        nonlocal expired
        expired = True
        session.close("e2e wait expired")

    def stop() -> bool:
        if expired or not session.connected:
            return True
        try:
            return bool(predicate())
        except Exception as exc:  # re-raised below: raised inside the loop it would only be logged
            failures.append(exc)
            return True

    handle = connection.io_loop.call_later(timeout, expire)
    try:
        connection._loop_until(stop)
    finally:
        connection.io_loop.remove_timeout(handle)
    if failures:
        raise failures[0]
    return bool(predicate())


def model(session: ClientSession, name: str) -> Any:
    found = session.document.select_one({"name": name})
    assert found is not None, f"no model named {name!r} in the pulled document"
    return found


def expected_y(session: ClientSession) -> np.ndarray:
    """y recomputed from the session's own slider values, as the sliders app does."""
    x = np.asarray(model(session, "source").data["x"], dtype=float)
    amplitude, frequency, phase, offset = (
        float(model(session, n).value) for n in ("amplitude", "frequency", "phase", "offset")
    )
    return amplitude * np.sin(frequency * x + phase) + offset


def y_of(session: ClientSession) -> np.ndarray:
    return np.asarray(model(session, "source").data["y"], dtype=float)


def y_matches(session: ClientSession) -> bool:
    y, expected = y_of(session), expected_y(session)
    return y.shape == expected.shape and bool(np.allclose(y, expected, rtol=1e-9, atol=1e-9))


def test_pull_session_sees_the_initial_document(open_session):
    session = open_session("sliders")

    source = model(session, "source")
    assert model(session, "amplitude").value == 1
    assert set(source.data) >= {"x", "y"}
    x, y = np.asarray(source.data["x"], dtype=float), y_of(session)
    assert len(x) > 1 and x.shape == y.shape
    assert np.allclose(y, expected_y(session))


def test_moving_a_slider_from_the_client_recomputes_the_data_on_the_server(open_session):
    session = open_session("sliders")
    y0 = y_of(session)
    offset = float(model(session, "offset").value)

    model(session, "amplitude").value = 3

    def recomputed() -> bool:
        return y_matches(session) and not np.allclose(y_of(session), y0)

    assert pump_until(session, recomputed), (
        f"source.data['y'] not recomputed for amplitude=3 within {WAIT_SECONDS} s; "
        f"connected={session.connected}, y[:5]={y_of(session)[:5]}"
    )
    if offset == 0:
        assert np.allclose(y_of(session), 3 * y0)


def test_two_connections_to_one_session_see_each_others_changes(open_session):
    first = open_session("sliders")
    second = open_session("sliders", session_id=first.id)
    assert second.id == first.id
    assert model(second, "source").id == model(first, "source").id

    model(first, "amplitude").value = 3
    assert pump_until(second, lambda: model(second, "amplitude").value == 3 and y_matches(second)), (
        f"second connection did not see amplitude=3 from the first: "
        f"amplitude={model(second, 'amplitude').value}, connected={second.connected}"
    )
    assert pump_until(first, lambda: y_matches(first)), "first connection did not get the recomputed data"

    model(second, "offset").value = 0.5
    assert pump_until(first, lambda: model(first, "offset").value == 0.5 and y_matches(first)), (
        f"first connection did not see offset=0.5 from the second: "
        f"offset={model(first, 'offset').value}, connected={first.connected}"
    )
    assert model(first, "amplitude").value == 3


def test_a_pan_no_python_listens_to_reaches_the_other_connections_and_the_session_goes_on(open_session):
    first = open_session("sliders")
    second = open_session("sliders", session_id=first.id)
    x_range = model(first, "plot").x_range
    x_range.start, x_range.end = 1.0, 5.0  # what BokehJS sends while the user pans

    def panned() -> bool:
        other = model(second, "plot").x_range
        return (other.start, other.end) == (1.0, 5.0)

    assert pump_until(second, panned), f"the other connection did not see the pan: {model(second, 'plot').x_range.start}"
    model(second, "amplitude").value = 2  # app code after a patch applied on the loop
    assert pump_until(first, lambda: model(first, "amplitude").value == 2 and y_matches(first)), (
        f"first connection did not get amplitude=2 and its data: connected={first.connected}"
    )


def test_request_arguments_reach_a_directory_app(open_session):
    session = open_session("dirapp", arguments={"flavour": "quince"})

    text = model(session, "args").text
    assert "flavour" in text and "quince" in text, text


EMPTY_COLUMNS_APP = """
import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

empty = np.array([], dtype=float)
curdoc().add_root(ColumnDataSource(name="source", data={"x": empty, "y": empty}))
"""


def test_an_empty_array_reaches_the_client(bokeh_server_factory, tmp_path):
    # An empty numpy column travels as a binary frame of zero bytes, which must be sent too.
    script = tmp_path / "empty_columns.py"
    script.write_text(EMPTY_COLUMNS_APP)
    server = bokeh_server_factory(str(script))
    with client_sessions(server.app_url) as open_:
        data = model(open_("empty_columns"), "source").data
        assert set(data) == {"x", "y"} and len(data["x"]) == len(data["y"]) == 0
    assert server.log_problems() == [], server.log_tail(40)


def test_server_log_shows_no_errors(server):
    assert server.log_problems() == [], server.log_tail(80)


SQLITE_APP = """
import sqlite3

from bokeh.io import curdoc
from bokeh.models import Div, Slider

# made while the document is built: sqlite3 refuses it on any other thread
db = sqlite3.connect(":memory:")
db.execute("create table changes (value integer)")
slider = Slider(start=0, end=100, value=0, step=1, name="slider")
out = Div(name="out", text="0 0")


def changed(attr, old, new):
    db.execute("insert into changes values (?)", (new,))
    count, total = db.execute("select count(*), sum(value) from changes").fetchone()
    out.text = f"{count} {total}"


slider.on_change("value", changed)
curdoc().add_root(slider)
curdoc().add_root(out)
"""


def test_a_thread_bound_object_made_by_the_script_works_in_every_change_of_three_sessions(bokeh_server_factory, tmp_path):
    script = tmp_path / "sqlite_app.py"
    script.write_text(SQLITE_APP)
    server = bokeh_server_factory(str(script))
    with client_sessions(server.app_url) as open_:
        sessions = [open_("sqlite_app") for _ in range(3)]
        for value in range(1, 7):
            for session in sessions:  # the three sessions' changes are in flight together
                model(session, "slider").value = value
            expected = f"{value} {sum(range(1, value + 1))}"
            for session in sessions:
                assert pump_until(session, lambda s=session: model(s, "out").text == expected), (
                    f"change {value}: out={model(session, 'out').text!r}\n{server.log_tail(30)}"
                )
    assert server.log_problems() == [], server.log_tail(40)


HALF_BUILT_APP = """
from bokeh.io import curdoc
from bokeh.models import Div

curdoc().add_root(Div(name="built", text="built before the failure"))
1 / 0
curdoc().add_root(Div(name="never", text="never built"))
"""


def test_an_app_failing_while_building_gives_a_pull_what_it_built(bokeh_server_factory, tmp_path):
    script = tmp_path / "half_built.py"
    script.write_text(HALF_BUILT_APP)
    server = bokeh_server_factory(str(script))
    with client_sessions(server.app_url) as open_:
        session = open_("half_built")
        assert model(session, "built").text == "built before the failure"
        assert session.document.select_one({"name": "never"}) is None
    errors = [line for line in server.log_problems() if "ERROR" in line]
    assert len(errors) == 1 and "failed to build the document of session" in errors[0], server.log_tail(40)
    assert server.log_text().count(f'File "{script}", line 6') == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pinning needs os.sched_setaffinity (Linux)")
def test_a_pinned_server_keeps_every_thread_on_one_core_and_serves(bokeh_server_factory):
    server = bokeh_server_factory("--pin-cores")
    with client_sessions(server.app_url) as open_:
        session = open_("sliders")
        model(session, "amplitude").value = 3
        assert pump_until(session, lambda: y_matches(session) and np.allclose(y_of(session).max(), 3, atol=0.1))
    threads = psutil.Process(server.pid).threads()
    cores = {frozenset(os.sched_getaffinity(thread.id)) for thread in threads}
    assert len(cores) == 1 and len(next(iter(cores))) == 1, cores
    assert len(threads) > 2  # app-code threads, started after pinning, too


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="placing threads needs os.sched_setaffinity (Linux) and two cores")
def test_by_default_a_server_keeps_to_one_core_and_leaves_it_to_a_process_that_crowds_it(bokeh_server_factory):
    server = bokeh_server_factory()
    with client_sessions(server.app_url) as open_:
        session = open_("sliders")  # app-code threads exist before the placement is looked at
        [core] = wait_until(lambda: one_core(server.pid), what="every thread of the server on the same single core")
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            os.sched_setaffinity(hog.pid, {core})
            wait_until(lambda: frozenset({core}) not in thread_cores(server.pid), what="the server off the crowded core")
            assert len(thread_cores(server.pid)) == 1  # every thread went the same way
            model(session, "amplitude").value = 2
            assert pump_until(session, lambda: y_matches(session) and np.allclose(y_of(session).max(), 2, atol=0.1))
        finally:
            hog.kill()
            hog.wait()
    assert "other processes took" in server.log_text() and "kept on CPU core" in server.log_text()
