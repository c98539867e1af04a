"""Headless Chromium on the callback and database examples: streaming, clock, measurements (ORM)."""
from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WAIT_MS = 60_000  # bounds a failure only: pages load slowly on a busy machine
READY_JS = """(name) => window.Bokeh !== undefined && Bokeh.documents.length === 1
    && Bokeh.documents[0].get_model_by_name(name) !== null"""
MODEL_JS = """([name, attr]) => Bokeh.documents[0].get_model_by_name(name)[attr]"""
COLUMN_LENGTH_JS = """([name, column]) => Bokeh.documents[0].get_model_by_name(name).data[column].length"""
LAST_T_JS = """() => { const t = Bokeh.documents[0].get_model_by_name('source').data.t; return t[t.length - 1] }"""


@pytest.fixture(scope="module")
def server(bokeh_server_factory, free_port):
    port = free_port()
    return bokeh_server_factory("--allow-websocket-origin", f"127.0.0.1:{port}", port=port)


def open_app(chromium_page, url: str, model_name: str):
    page = chromium_page.page
    page.goto(url)
    page.wait_for_function(READY_JS, arg=model_name, timeout=WAIT_MS)
    return page


def test_streaming_data_grows_in_the_page(server, chromium_page):
    page = open_app(chromium_page, server.app_url("streaming"), "source")
    page.wait_for_function(f"() => ({COLUMN_LENGTH_JS})(['source', 't']) >= 10", timeout=WAIT_MS)
    # the app rolls its rows over at 500: follow the newest tick, not the row count
    first = page.evaluate(LAST_T_JS)
    page.wait_for_function(f"(n) => ({LAST_T_JS})() >= n + 30", arg=first, timeout=WAIT_MS)
    t = page.evaluate("() => Array.from(Bokeh.documents[0].get_model_by_name('source').data.t)")
    assert t == sorted(t) and len(set(t)) == len(t), "streamed rows arrive in order, none twice"
    assert page.evaluate(MODEL_JS, ["status", "text"]).startswith("rows: ")
    assert chromium_page.errors == []


def test_clock_ticks(server, chromium_page):
    page = open_app(chromium_page, server.app_url("clock"), "clock")
    page.wait_for_function("() => /^\\d\\d:\\d\\d:\\d\\d$/.test(Bokeh.documents[0].get_model_by_name('clock').text)",
                           timeout=WAIT_MS)
    first = page.evaluate(MODEL_JS, ["clock", "text"])
    page.wait_for_function("(t) => Bokeh.documents[0].get_model_by_name('clock').text !== t", arg=first, timeout=WAIT_MS)
    assert chromium_page.errors == []


def test_adding_a_measurement_shows_it_in_the_plot_and_stores_it(server, chromium_page, e2e_database):
    page = open_app(chromium_page, server.app_url("measurements"), "source")
    before = page.evaluate(COLUMN_LENGTH_JS, ["source", "id"])
    page.evaluate("""() => {
        const doc = Bokeh.documents[0];
        doc.get_model_by_name('label').value = 'from-chromium';
        doc.get_model_by_name('value').value = 42.5;
    }""")
    page.locator("button", has_text="Add measurement").click()
    page.wait_for_function(f"(n) => ({COLUMN_LENGTH_JS})(['source', 'id']) === n + 1", arg=before, timeout=WAIT_MS)
    values = page.evaluate("() => Array.from(Bokeh.documents[0].get_model_by_name('source').data.value)")
    labels = page.evaluate("() => Array.from(Bokeh.documents[0].get_model_by_name('source').data.label)")
    assert values[-1] == 42.5 and labels[-1] == "from-chromium"
    with closing(sqlite3.connect(e2e_database)) as db:
        rows = db.execute("SELECT label, value FROM measurements_measurement WHERE label = 'from-chromium'").fetchall()
    assert rows == [("from-chromium", 42.5)]
    # the count's text is a change of its own, in a PATCH-DOC after the data's (as under bokeh serve)
    page.wait_for_function(f"(text) => ({MODEL_JS})(['count', 'text']) === text",
                           arg=f"{before + 1} measurements", timeout=WAIT_MS)
    assert chromium_page.errors == []
