"""Headless Chromium driving BokehJS against a real ``runbokeh`` (daphne).

Playwright's sync API runs its own event loop, so every test here is a plain ``def``.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bokeh.embed import server_document

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PAGES_DIR = Path(__file__).resolve().parent / "pages"
WAIT_MS = 60_000  # bounds a failure only: pages load slowly on a busy machine

DOCUMENT_READY_JS = """(name) => window.Bokeh !== undefined && Bokeh.documents.length === 1
    && Bokeh.documents[0].get_model_by_name(name) != null"""

# Drawn canvases anywhere in the page, shadow roots included (BokehJS 3 renders into open shadow roots).
CANVAS_COUNT_JS = """() => {
  let count = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "CANVAS" && el.width > 0 && el.height > 0) count += 1;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return count;
}"""

SOURCE_Y_JS = """() => {
  const data = Bokeh.documents[0].get_model_by_name("source").data;
  return Array.from(data instanceof Map ? data.get("y") : data.y);
}"""

SET_SLIDER_JS = """([name, value]) => { Bokeh.documents[0].get_model_by_name(name).value = value; }"""

# True once source.y is what the sliders app computes from the current slider values, and differs from y0.
Y_RECOMPUTED_JS = """(y0) => {
  const doc = Bokeh.documents[0];
  const v = (name) => doc.get_model_by_name(name).value;
  const data = doc.get_model_by_name("source").data;
  const column = (k) => Array.from(data instanceof Map ? data.get(k) : data[k]);
  const x = column("x"), y = column("y");
  if (y.length !== x.length || y.length !== y0.length) return false;
  const a = v("amplitude"), f = v("frequency"), p = v("phase"), o = v("offset");
  const matches = x.every((xi, i) => Math.abs(a * Math.sin(f * xi + p) + o - y[i]) < 1e-9);
  const changed = y.some((yi, i) => Math.abs(yi - y0[i]) > 1e-9);
  return matches && changed;
}"""


class ForeignSite:
    """A plain ``http.server`` on another port serving one page, to embed an app cross-origin."""

    def __init__(self) -> None:
        self.html = "<!DOCTYPE html><title>empty</title>"
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/":
                    self.send_error(404)
                    return
                body = site.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="foreign-site", daemon=True)

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.origin}/"


@pytest.fixture(scope="module")
def foreign_site() -> Iterator[ForeignSite]:
    site = ForeignSite()
    site.thread.start()
    try:
        yield site
    finally:
        site.httpd.shutdown()
        site.httpd.server_close()
        site.thread.join(timeout=5)


@pytest.fixture(scope="module")
def server(bokeh_server_factory, free_port, foreign_site):
    """One server for the module: the settings' apps, accepting websockets from its own and the foreign origin."""
    port = free_port()
    return bokeh_server_factory(
        "--allow-websocket-origin", f"127.0.0.1:{port}",
        "--allow-websocket-origin", foreign_site.origin,
        port=port,
    )


def open_app(chromium_page, url: str, model_name: str) -> Any:
    page = chromium_page.page
    page.goto(url)
    page.wait_for_function(DOCUMENT_READY_JS, arg=model_name, timeout=WAIT_MS)
    return page


def wait_for_canvas(page: Any) -> None:
    page.wait_for_function(f"() => ({CANVAS_COUNT_JS})() > 0", timeout=WAIT_MS)


def move_amplitude_and_wait(page: Any) -> list[float]:
    y0 = page.evaluate(SOURCE_Y_JS)
    assert len(y0) > 1
    page.evaluate(SET_SLIDER_JS, ["amplitude", 3])
    page.wait_for_function(Y_RECOMPUTED_JS, arg=y0, timeout=WAIT_MS)
    return y0


def test_sliders_page_renders(server, chromium_page, artifacts_dir):
    page = open_app(chromium_page, server.app_url("sliders"), "source")
    wait_for_canvas(page)
    assert page.evaluate("() => Bokeh.documents[0].get_model_by_name('amplitude').value") == 1

    page.screenshot(path=str(artifacts_dir / "sliders.png"), full_page=True)
    assert chromium_page.errors == []


def test_moving_a_slider_in_bokehjs_round_trips_through_the_server(server, chromium_page):
    page = open_app(chromium_page, server.app_url("sliders"), "source")

    y0 = move_amplitude_and_wait(page)

    y = page.evaluate(SOURCE_Y_JS)
    offset = page.evaluate("() => Bokeh.documents[0].get_model_by_name('offset').value")
    if offset == 0:
        assert y == pytest.approx([3 * v for v in y0], rel=1e-9, abs=1e-9)
    assert chromium_page.errors == []


def test_button_click_reaches_the_python_callback(server, chromium_page):
    page = open_app(chromium_page, server.app_url("widgets"), "clicks")
    label = page.evaluate("() => Bokeh.documents[0].get_model_by_name('button').label")
    assert "Clicks: 0" in page.evaluate("() => Bokeh.documents[0].get_model_by_name('clicks').text")

    page.get_by_role("button", name=label, exact=True).click()

    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('clicks').text.includes('Clicks: 1')", timeout=WAIT_MS
    )
    page.get_by_text("Clicks: 1").wait_for(timeout=WAIT_MS)
    assert chromium_page.errors == []


def test_directory_app_uses_its_template_and_static_files(server, chromium_page):
    page = open_app(chromium_page, server.app_url("dirapp") + "?flavour=quince", "args")

    heading = page.locator("#dirapp-heading")
    heading.wait_for(timeout=WAIT_MS)
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('dirapp-heading')).color === 'rgb(200, 30, 30)'",
        timeout=WAIT_MS,
    )
    assert page.evaluate("() => Bokeh.documents.length") == 1
    text = page.evaluate("() => Bokeh.documents[0].get_model_by_name('args').text")
    assert "flavour" in text and "quince" in text, text
    assert chromium_page.errors == []


def test_autoload_embed_on_a_foreign_page_is_interactive(server, foreign_site, chromium_page):
    template = (PAGES_DIR / "autoload.html").read_text()
    foreign_site.html = template.replace("{{ bokeh_script }}", server_document(server.app_url("sliders")))

    page = open_app(chromium_page, foreign_site.url, "source")
    assert page.locator("#foreign-heading").is_visible()
    wait_for_canvas(page)

    move_amplitude_and_wait(page)
    assert chromium_page.errors == []


def test_an_app_page_framed_by_a_page_of_another_origin_works(server, foreign_site, chromium_page):
    app_url = server.app_url("sliders")
    foreign_site.html = (f'<!DOCTYPE html><title>framing</title><link rel="icon" href="data:,"><h1 id="foreign-heading">Framed</h1>'
                         f'<iframe id="app" src="{app_url}" width="900" height="700"></iframe>')
    page = chromium_page.page
    page.goto(foreign_site.url)
    page.locator("#app").wait_for(timeout=WAIT_MS)
    frame = page.frame(url=app_url)
    assert frame is not None
    frame.wait_for_function(DOCUMENT_READY_JS, arg="source", timeout=WAIT_MS)
    wait_for_canvas(frame)

    move_amplitude_and_wait(frame)
    assert chromium_page.errors == []


def test_server_log_shows_no_errors(server):
    assert server.log_problems() == [], server.log_tail(80)
