"""What an operator reads in runbokeh's log, with the demo site's settings and a real browser."""
from __future__ import annotations

import re
import signal
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WAIT_MS = 60_000  # bounds a failure only
READY_JS = """(name) => window.Bokeh !== undefined && Bokeh.documents.length === 1
    && Bokeh.documents[0].get_model_by_name(name) !== null"""
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")

NOISY_APP = '''\
import warnings

from bokeh.io import curdoc
from bokeh.models import Button, Div

warnings.warn("noisy app: the knob is deprecated", UserWarning)
button = Button(label="boom", name="boom")


def clicked(event):
    raise ValueError("button exploded")


button.on_click(clicked)
curdoc().add_root(button)
curdoc().add_root(Div(name="status", text="ready"))
'''
RAISE_LINE = 11

HALF_BUILT_APP = '''\
from bokeh.io import curdoc
from bokeh.models import Div

curdoc().add_root(Div(name="built", text="built before the failure"))
1 / 0
curdoc().add_root(Div(name="never", text="never built"))
'''


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("apps")
    (folder / "noisy.py").write_text(NOISY_APP)
    (folder / "half_built.py").write_text(HALF_BUILT_APP)
    return folder


@pytest.fixture(scope="module")
def noisy(apps) -> Path:
    return apps / "noisy.py"


@pytest.fixture(scope="module")
def server(bokeh_server_factory, free_port, apps):
    port = free_port()
    return bokeh_server_factory(str(apps / "noisy.py"), str(apps / "half_built.py"),
                                "--allow-websocket-origin", f"127.0.0.1:{port}", port=port)


def open_app(chromium_page, server):
    page = chromium_page.page
    page.goto(server.app_url("noisy"))
    page.wait_for_function(READY_JS, arg="boom", timeout=WAIT_MS)
    return page


def session_id_of(page) -> str:
    return page.evaluate("() => Bokeh.documents[0]._session_id ?? Bokeh.documents[0].session_id ?? ''") or ""


def logged(server, pattern: str) -> list[str]:
    return [line for line in server.log_text().splitlines() if re.search(pattern, line)]


def test_a_raising_callback_is_logged_once_at_error_with_its_traceback(server, chromium_page, noisy):
    page = open_app(chromium_page, server)
    page.locator("button", has_text="boom").click()
    where = f'File "{noisy}", line {RAISE_LINE}, in clicked'
    wait_until(lambda: logged(server, re.escape(where)), what="the callback's traceback in the log")
    page.context.close()  # a later event: anything logged twice would be there by the time it is
    wait_until(lambda: logged(server, "WebSocket connection closed"), what="the closed line")
    errors = logged(server, "ERROR .*button exploded")
    assert len(errors) == 1, server.log_tail(60)
    assert "Error handling PATCH-DOC for session" in errors[0]
    assert len(logged(server, "^ValueError: button exploded$")) == 1, server.log_tail(60)
    assert len(logged(server, re.escape(where))) == 1


def test_a_warning_raised_by_app_code_is_logged(server, chromium_page, noisy):
    open_app(chromium_page, server)
    lines = logged(server, "WARNING py.warnings: .*noisy app: the knob is deprecated")
    assert lines and f"{noisy}:6: UserWarning" in lines[0], server.log_tail(40)


def test_websocket_opened_and_closed_are_logged_at_info(server, chromium_page):
    page = open_app(chromium_page, server)
    opened = wait_until(lambda: logged(server, r"INFO bokehserver\.consumers: WebSocket connection opened for /noisy session "))
    session_ids = {line.split()[-1] for line in opened}
    page.context.close()
    closed = wait_until(lambda: [line for line in logged(server, r"INFO bokehserver\.consumers: WebSocket connection closed: code=\d+")
                                 if line.rstrip(")").split()[-1] in session_ids])
    assert closed, server.log_tail(40)


def test_every_log_line_has_one_format_with_a_utc_timestamp(server, chromium_page):
    open_app(chromium_page, server)
    wait_until(lambda: logged(server, "WebSocket connection opened"))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    records = [line for line in server.log_text().splitlines()
               if re.search(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b", line) and not line.startswith(" ")
               and not line.startswith(("Traceback", "$ ", "ValueError"))]
    assert records
    for line in records:
        match = STAMP.match(line)
        assert match, f"not in the log format: {line!r}"
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
        assert abs(stamp - now) < timedelta(minutes=15), f"not UTC (now {now:%H:%M} UTC): {line!r}"


def test_shutdown_is_logged(bokeh_server_factory, free_port, noisy, chromium_page):
    port = free_port()
    server = bokeh_server_factory(str(noisy), "--allow-websocket-origin", f"127.0.0.1:{port}", port=port)
    open_app(chromium_page, server)
    wait_until(lambda: logged(server, "WebSocket connection opened"))
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0
    assert logged(server, r"INFO .*Stopping: no longer listening; closing 1 websockets, then ending 1 sessions")
    assert logged(server, r"INFO .*WebSocket connection closed: code=")
    assert logged(server, r"INFO .*Stopped: 1 sessions ended")
    assert logged(server, r"INFO .*Bokeh server process \d+ exits")


def test_an_app_failing_while_building_serves_what_it_built_and_logs_the_error_once(server, chromium_page, apps):
    where = f'File "{apps / "half_built.py"}", line 5'
    page = chromium_page.page
    response = page.goto(server.app_url("half_built"))
    assert response.status == 200
    page.wait_for_function(READY_JS, arg="built", timeout=WAIT_MS)
    assert page.evaluate("() => Bokeh.documents[0].get_model_by_name('never')") is None
    html = page.content()
    assert "ZeroDivisionError" not in html and "Traceback" not in html and "half_built.py" not in html
    wait_until(lambda: logged(server, re.escape(where)), what="the build's traceback in the log")
    assert len(logged(server, re.escape(where))) == 1, server.log_tail(40)
    errors = logged(server, "ERROR .*/half_built")
    assert len(errors) == 1 and "App /half_built failed to build the document of session" in errors[0], errors

    with urllib.request.urlopen(f"{server.app_url('half_built')}/autoload.js?bokeh-autoload-element=el", timeout=30) as js:
        assert js.status == 200
        body = js.read().decode()
    assert "ZeroDivisionError" not in body and "half_built.py" not in body

    # one build per session, each logged once: the page's and autoload.js's (bokeh.client's: test_client.py)
    wait_until(lambda: len(logged(server, re.escape(where))) == 2, what="two builds logged")
    assert len(logged(server, "ERROR .*/half_built")) == 2, server.log_tail(60)
    assert not logged(server, "Internal Server Error"), server.log_tail(60)
