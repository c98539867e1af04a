"""The README's "In your Django project", followed to the letter: ``tests/startproject_site`` served four ways.

The site is ``django-admin startproject mysite`` plus the README's lines (``tests/test_docs.py``
holds them together). Each server (``manage.py runserver``, ``daphne mysite.asgi:application``,
``manage.py runbokeh``, and uvicorn as another ASGI server) runs a copy of it, once per module,
and is driven by headless Chromium and by ``bokeh.client``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bokeh.client import ClientSession
from waiting import wait_until

from .test_browser import move_amplitude_and_wait, open_app, wait_for_canvas
from .test_client import client_sessions, model, pump_until, y_matches

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("hard_timeout")]

SITE = Path(__file__).resolve().parents[1] / "startproject_site"
DAPHNE = Path(sys.executable).with_name("daphne")
SERVERS = ("runserver", "daphne", "runbokeh", "uvicorn")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPRedirectHandler())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def get(url: str, *, follow: bool = True) -> tuple[int, dict[str, str], bytes]:
    opener = _NO_PROXY if follow else urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        with opener.open(url, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated copy of the site (its SQLite file lands in the copy, not in the repository)."""
    copy = tmp_path_factory.mktemp("startproject") / "site"
    shutil.copytree(SITE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mysite.settings"}
    result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return copy


def _command(kind: str, port: int) -> list[str]:
    if kind == "runserver":
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    if kind == "daphne":
        return [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "mysite.asgi:application"]
    if kind == "uvicorn":
        pytest.importorskip("uvicorn")
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "mysite.asgi:application"]
    return [sys.executable, "manage.py", "runbokeh", "--address", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest, site: Path, free_port, server_process, tmp_path_factory) -> Iterator[Any]:
    """The site under one server, for the tests of the module that use it (pytest groups them)."""
    port = free_port()
    logs = tmp_path_factory.mktemp(f"{request.param}-log")
    server = server_process(_command(request.param, port), port=port, cwd=site, log_path=logs / "server.log",
                           env={"DJANGO_SETTINGS_MODULE": "mysite.settings"}, ready_path="/admin/login/")
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


def url(server: Any, path: str = "") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def in_a_thread(function: Callable[[], Any]) -> Any:
    """Run ``function`` in a thread of its own: the module's Chromium (Playwright's sync API) keeps an
    event loop running in this one, where bokeh.client and asyncio.run() cannot run theirs."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()


@pytest.mark.browser
def test_the_app_renders_and_a_slider_change_comes_back(served, chromium_page):
    page = open_app(chromium_page, url(served, "/dashboards/sliders"), "source")
    wait_for_canvas(page)
    move_amplitude_and_wait(page)
    assert chromium_page.errors == []


def test_bokeh_client_pulls_and_changes_a_session(served):
    def change_frequency() -> bool:
        with client_sessions(lambda app: url(served, f"/dashboards/{app}")) as open_session:
            session: ClientSession = open_session("sliders")
            y0 = list(model(session, "source").data["y"])
            model(session, "frequency").value = 2.5
            return pump_until(session, lambda: y_matches(session) and list(model(session, "source").data["y"]) != y0)

    assert in_a_thread(change_frequency)


def test_a_2_mib_change_reaches_the_app_and_comes_back(served):
    big_title = "a" * (2 * 1024 * 1024)

    def send_big_title() -> tuple[bool, bool]:
        with client_sessions(lambda app: url(served, f"/dashboards/{app}")) as open_session:
            session = open_session("sliders")
            model(session, "title").value = big_title
            return pump_until(session, lambda: model(session, "plot").title.text == big_title), session.connected

    assert in_a_thread(send_big_title) == (True, True)


def test_bokehjs_and_the_admins_static_files_are_served_side_by_side(served):
    page = get(url(served, "/dashboards/sliders"))[2].decode()
    assert 'src="/static/bokehserver/js/bokeh.min.js"' in page
    assert get(url(served, "/static/bokehserver/js/bokeh.min.js"))[0] == 200
    status, headers, css = get(url(served, "/static/admin/css/base.css"))
    assert status == 200 and headers["Content-Type"].startswith("text/css")


def test_the_sites_own_urls_keep_working(served):
    status, headers, _ = get(url(served, "/admin"), follow=False)
    assert (status, headers.get("Location")) == (301, "/admin/")
    status, headers, _ = get(url(served, "/dashboards/"), follow=False)
    assert (status, headers.get("Location")) == (302, "/dashboards/sliders")
    assert get(url(served, "/favicon.ico"))[0] == 404


def test_refused_websockets_carry_their_close_reason(served):
    import websockets

    async def refused(token: str) -> tuple[int, str]:
        async with websockets.connect(url(served, "/dashboards/sliders/ws").replace("http", "ws", 1),
                                      subprotocols=["bokeh", token], origin=url(served)) as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
        return closed.value.rcvd.code, closed.value.rcvd.reason

    assert in_a_thread(lambda: asyncio.run(refused("not-a-token"))) == (4003, "Malformed session token")


def test_server_log_shows_no_errors(served):
    assert served.log_problems() == [], served.log_tail(80)


def test_runbokeh_on_a_site_without_logging_prints_the_servers_info_lines(site, free_port, server_process, tmp_path):
    """The site configures no LOGGING: runbokeh prints bokehserver's lines as bokeh serve would, in --log-format."""
    import re
    import signal

    port = free_port()
    command = [*_command("runbokeh", port), "--log-format", "%(asctime)s [%(levelname)s] %(name)s | %(message)s"]
    server = server_process(command, port=port, cwd=site, log_path=tmp_path / "server.log",
                            env={"DJANGO_SETTINGS_MODULE": "mysite.settings"}, ready_path="/admin/login/")
    server.start(timeout=60)
    try:
        def pull() -> str:
            with client_sessions(lambda app: url(server, f"/dashboards/{app}")) as open_session:
                return open_session("sliders").id

        session_id = in_a_thread(pull)
        stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
        line = rf"{stamp}\[INFO\] bokehserver\.consumers \| WebSocket connection opened for /sliders session {session_id}$"
        wait_until(lambda: re.search(line, server.log_text(), re.M), what=f"the opened line in --log-format: {server.log_tail()}")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        assert re.search(rf"{stamp}\[INFO\] .* \| Bokeh server process \d+ exits$", server.log_text(), re.M), server.log_tail()
    finally:
        server.stop()
