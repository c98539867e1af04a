"""Panel apps (a FastListTemplate with onload, a periodic callback and pn.state.cache) in headless Chromium.

Served by ``runbokeh`` and by daphne in a Django site that includes ``bokehserver.urls`` under
``dashboards/``. Panel is an optional extra: without it these tests skip, and fail in CI's panel
combination (``BOKEHSERVER_REQUIRE_SERVICES=1,panel``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_browser import WAIT_MS

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REPO_ROOT = Path(__file__).resolve().parents[2]
PANEL_APP = REPO_ROOT / "examples" / "panel" / "panel_app.py"
SITE = REPO_ROOT / "tests" / "startproject_site"
DAPHNE = Path(sys.executable).with_name("daphne")

# the text of any model of the page's document (Panel's panes render through HTML models)
TEXT_SHOWN_JS = """(wanted) => window.Bokeh !== undefined && Bokeh.documents.length === 1
    && [...Bokeh.documents[0]._all_models.values()].some((m) => typeof m.text === "string" && m.text.includes(wanted))"""
SET_TEXT_INPUT_JS = """(value) => {
  const inputs = [...Bokeh.documents[0]._all_models.values()].filter((m) => m.type.endsWith("TextInput"));
  if (inputs.length !== 1) throw new Error(`expected one TextInput, found ${inputs.length}`);
  inputs[0].value = value;
}"""


@pytest.fixture(scope="module")
def panel_installed(require_service) -> None:
    require_service("panel")


@pytest.fixture(scope="module")
def runbokeh_url(panel_installed, bokeh_server_factory, free_port) -> str:
    port = free_port()
    server = bokeh_server_factory(str(PANEL_APP), "--allow-websocket-origin", f"127.0.0.1:{port}", port=port)
    return server.app_url("panel_app")


@pytest.fixture(scope="module")
def site_url(panel_installed, tmp_path_factory, free_port, server_process) -> Iterator[str]:
    """The README's Django site with the Panel app in its BOKEHSERVER["APPS"], under daphne."""
    copy = tmp_path_factory.mktemp("panel-site") / "site"
    shutil.copytree(SITE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    (copy / "mysite" / "panel_settings.py").write_text(
        "from .settings import *  # noqa: F403\n\n"
        f"BOKEHSERVER = {{'APPS': {{'/panel': {str(PANEL_APP)!r}}}}}\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mysite.panel_settings"}
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=copy, env=env,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    port = free_port()
    server = server_process([str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "mysite.asgi:application"],
                            port=port, cwd=copy, log_path=copy / "daphne.log",
                            env={"DJANGO_SETTINGS_MODULE": "mysite.panel_settings"}, ready_path="/admin/login/")
    server.start(timeout=90)
    try:
        yield f"http://127.0.0.1:{port}/dashboards/panel"
    finally:
        server.stop()


@pytest.fixture(params=["runbokeh", "site"])
def panel_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


def open_panel_app(chromium_page: Any, url: str) -> tuple[Any, list[tuple[int, str]]]:
    """Load the app; return the page and every (status, url) of the extension files it fetched."""
    page = chromium_page.page
    fetched: list[tuple[int, str]] = []
    page.on("response", lambda r: "/static/extensions/" in r.url and fetched.append((r.status, r.url)))
    page.goto(url)
    page.wait_for_function(TEXT_SHOWN_JS, arg="output: panel panel panel", timeout=WAIT_MS)
    return page, fetched


def own_errors(chromium_page: Any) -> list[str]:
    """Console errors, less the template's web fonts (no internet here)."""
    return [e for e in chromium_page.errors if "ERR_NAME_NOT_RESOLVED" not in e and "fonts.g" not in e]


def test_panel_app_renders_with_its_extension_files(panel_url, chromium_page):
    page, fetched = open_panel_app(chromium_page, panel_url)
    page.get_by_text("bokehserver and Panel").first.wait_for(timeout=WAIT_MS)  # the template's header

    assert any("/static/extensions/panel/panel.min.js?v=" in url for _, url in fetched), fetched
    assert [(status, url) for status, url in fetched if status != 200] == []
    root = panel_url.rsplit("/", 1)[0]
    assert all(url.startswith(f"{root}/static/extensions/panel/") for _, url in fetched), fetched
    assert own_errors(chromium_page) == []


def test_a_widget_change_updates_the_output_through_python(panel_url, chromium_page):
    page, _ = open_panel_app(chromium_page, panel_url)

    page.evaluate(SET_TEXT_INPUT_JS, "zebra")

    page.wait_for_function(TEXT_SHOWN_JS, arg="output: zebra zebra zebra", timeout=WAIT_MS)
    page.get_by_text("output: zebra zebra zebra").wait_for(timeout=WAIT_MS)
    assert own_errors(chromium_page) == []


def test_onload_periodic_callbacks_and_the_cache_run_as_under_panel_serve(panel_url, chromium_page):
    page, _ = open_panel_app(chromium_page, panel_url)

    page.wait_for_function(TEXT_SHOWN_JS, arg="loaded, session", timeout=WAIT_MS)  # pn.state.onload
    page.wait_for_function(TEXT_SHOWN_JS, arg="ticks: 5", timeout=WAIT_MS)  # add_periodic_callback, count=5
    first = page.evaluate("""() => [...Bokeh.documents[0]._all_models.values()]
        .map((m) => m.text).find((t) => typeof t === "string" && t.includes("loaded, session"))""")
    visits = int(first.split("loaded, session ")[1].split("&")[0].split("<")[0])

    page.reload()  # a new session: pn.state.cache is the process's
    page.wait_for_function(TEXT_SHOWN_JS, arg=f"loaded, session {visits + 1}", timeout=WAIT_MS)
    assert own_errors(chromium_page) == []
