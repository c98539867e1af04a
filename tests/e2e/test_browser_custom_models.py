"""A custom model with a TypeScript ``__implementation__`` under runbokeh, in headless Chromium."""
from __future__ import annotations

from pathlib import Path

import pytest

from .test_browser import WAIT_MS

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

APP = Path(__file__).resolve().parents[2] / "examples" / "custom_model.py"
LOUD_JS = "() => { const m = Bokeh.documents[0].get_model_by_name('loud'); return [m.type, m.volume, m.text]; }"


@pytest.fixture(scope="module")
def server(require_service, bokeh_server_factory, free_port):
    require_service("node")
    port = free_port()
    return bokeh_server_factory(str(APP), "--allow-websocket-origin", f"127.0.0.1:{port}", port=port)


def test_a_typescript_model_renders_and_round_trips(server, chromium_page):
    page = chromium_page.page
    page.goto(server.app_url("custom_model"), timeout=WAIT_MS)  # the first page waits for the compile
    page.wait_for_function("() => window.Bokeh !== undefined && Bokeh.documents.length === 1 "
                           "&& Bokeh.documents[0].get_model_by_name('loud') != null", timeout=WAIT_MS)
    assert page.evaluate(LOUD_JS) == ["LoudDiv", 1, "quiet"]  # BokehJS knows the compiled model
    page.get_by_text("quiet").wait_for(timeout=WAIT_MS)

    page.evaluate("() => { Bokeh.documents[0].get_model_by_name('slider').value = 4; }")

    # volume and text are two changes, each a PATCH-DOC of its own (as under bokeh serve): wait for both
    page.wait_for_function("() => { const loud = Bokeh.documents[0].get_model_by_name('loud'); "
                           "return loud.volume === 4 && loud.text === '!!!!' }", timeout=WAIT_MS)
    assert page.evaluate(LOUD_JS) == ["LoudDiv", 4, "!!!!"]
    page.get_by_text("!!!!").wait_for(timeout=WAIT_MS)
    assert chromium_page.errors == []


def test_server_log_shows_no_errors(server):
    assert server.log_problems() == [], server.log_tail(80)
