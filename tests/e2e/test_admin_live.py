"""The admin against a real runbokeh, in headless Chromium: who owns a session, its live state, ending it,
the live dashboard, and nothing for users who are not staff."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest
from bokeh.util.token import get_session_id

from processes import REPO_ROOT
from waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.usefixtures("hard_timeout")]

WAIT_MS = 60_000
TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')
CLOCK_TICKS_JS = """() => window.Bokeh !== undefined && Bokeh.documents.length > 0
    && /^\\d\\d:\\d\\d:\\d\\d$/.test(Bokeh.documents[0].get_model_by_name('clock').text)"""
TOTALS_JS = """() => {
    const docs = window.Bokeh === undefined ? [] : Bokeh.documents;
    for (const doc of docs) {
        const totals = doc.get_model_by_name('bokehserver-dashboard-totals');
        if (totals !== null && totals.text.includes('sessions:')) return totals.text;
    }
    return null;
}"""


@pytest.fixture(scope="module")
def server(bokeh_server_factory, free_port, e2e_database):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "BOKEHSERVER_DB": str(e2e_database)}
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    "from django.contrib.auth.models import User; "
                    "User.objects.create_superuser('chief', 'chief@example.com', 'chief-pw'); "
                    "User.objects.create_user('walker', password='walker-pw')"],
                   cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    return bokeh_server_factory("--allow-websocket-origin", f"127.0.0.1:{port}", port=port)


class Clients:
    """bokeh.client sessions, driven from a thread of their own (Playwright's sync API holds this one's loop)."""

    def __init__(self) -> None:
        self.thread = ThreadPoolExecutor(max_workers=1)
        self.sessions: list = []

    def open(self, url: str):
        from bokeh.client import pull_session

        session = self.thread.submit(pull_session, url=url).result(timeout=120)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        for session in self.sessions:
            self.thread.submit(session.close).result(timeout=60)
        self.thread.shutdown()


def refusal_of(server, app: str, session_id: str) -> tuple[int, str]:
    """How the server closes a websocket that brings a token for ``session_id``."""
    from bokeh.util.token import generate_jwt_token
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = server.app_url(app).replace("http://", "ws://") + "/ws"
    with connect(url, subprotocols=["bokeh", generate_jwt_token(session_id)], open_timeout=30,
                 origin=f"http://{server.origin}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=30)
    return closed.value.rcvd.code, closed.value.rcvd.reason


def record_of(database, session_id: str, *, where: str = "1") -> tuple | None:
    with closing(sqlite3.connect(database, timeout=30)) as db:
        return db.execute(f"SELECT id, username, status, messages_in FROM bokehserver_bokehsession "
                          f"WHERE session_id = ? AND {where}", (session_id,)).fetchone()


def log_in(context, server, username: str, password: str, *, admin: bool = True):
    page = context.new_page()
    page.goto(f"{server.url}/admin/login/" if admin else f"{server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")
    page.wait_for_load_state()
    return page


def totals(page) -> tuple[int, int]:
    text = page.wait_for_function(TOTALS_JS).json_value()
    sessions, connections = re.search(r"sessions: (\d+).*connections: (\d+)", text).groups()
    return int(sessions), int(connections)


def test_the_admin_shows_a_users_session_and_ends_it_for_good(server, chromium_browser, e2e_database, artifacts_dir):
    context = chromium_browser.new_context()
    context.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    try:
        admin = log_in(context, server, "chief", "chief-pw")
        app_tab = context.new_page()
        app_tab.on("pageerror", lambda exc: errors.append(str(exc)))
        app_tab.goto(server.app_url("clock"))
        app_tab.wait_for_function(CLOCK_TICKS_JS)
        session_id = get_session_id(TOKEN_RE.search(app_tab.content()).group(1))

        record_id, username, status, _ = wait_until(lambda: record_of(e2e_database, session_id))
        assert (username, status) == ("chief", "live")
        admin.goto(f"{server.url}/admin/bokehserver/bokehsession/?q=chief")
        assert session_id in admin.content()
        admin.goto(f"{server.url}/admin/bokehserver/bokehsession/{record_id}/change/")
        live = admin.locator("#bokehserver-live-state")
        assert "Live state (from this process)" in live.inner_text()
        assert "Div “clock”" in live.inner_text() and "Clock" in live.inner_text()
        assert re.search(r"periodic \S*show_time every 1000 ms", live.inner_text()), live.inner_text()
        assert "HeadlessChrome" in live.inner_text()  # its one connection, with the browser's user agent
        admin.screenshot(path=str(artifacts_dir / "admin-session-detail.png"), full_page=True)

        admin.click("#bokehserver-end-session [type=submit]")
        admin.get_by_text("Ended 1 sessions (1 in this process, 0 in other processes)").wait_for()
        app_tab.get_by_text("This session has ended: ended by an administrator").wait_for()
        wait_until(lambda: record_of(e2e_database, session_id, where="status = 'admin' AND destroyed_at IS NOT NULL"))

        app_tab.reload()
        app_tab.wait_for_function(CLOCK_TICKS_JS)
        new_session_id = get_session_id(TOKEN_RE.search(app_tab.content()).group(1))
        assert new_session_id != session_id
        assert app_tab.get_by_text("This session has ended").count() == 0
        assert errors == []
    finally:
        context.close()
    assert server.log_problems() == []


def test_a_bokeh_client_session_is_listed_described_and_ended(server, chromium_browser, e2e_database):
    context = chromium_browser.new_context()
    context.set_default_timeout(WAIT_MS)
    clients = Clients()
    try:
        admin = log_in(context, server, "chief", "chief-pw")
        client = clients.open(server.app_url("sliders"))
        record_id, username, status, messages_in = wait_until(
            lambda: record_of(e2e_database, client.id, where="messages_in >= 1"))
        assert (username, status) == ("", "live")
        admin.goto(f"{server.url}/admin/bokehserver/bokehsession/{record_id}/change/")
        live = admin.locator("#bokehserver-live-state").inner_text()
        roots = [type(root).__name__ for root in client.document.roots]
        assert roots and all(name in live for name in roots), live
        admin.click("#bokehserver-end-session [type=submit]")
        admin.get_by_text("Ended 1 sessions (1 in this process, 0 in other processes)").wait_for()
        wait_until(lambda: record_of(e2e_database, client.id, where="status = 'admin' AND destroyed_at IS NOT NULL"))
        assert refusal_of(server, "sliders", client.id) == (4010, "session ended: ended by an administrator")
    finally:
        clients.close()
        context.close()


def test_the_dashboard_renders_and_follows_new_sessions(server, chromium_browser, artifacts_dir):
    context = chromium_browser.new_context()
    context.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    clients = Clients()
    try:
        dashboard = log_in(context, server, "chief", "chief-pw")
        dashboard.on("pageerror", lambda exc: errors.append(str(exc)))
        dashboard.goto(f"{server.url}/admin/bokehserver/bokehsession/dashboard/")
        sessions, connections = totals(dashboard)
        for _ in range(3):
            clients.open(server.app_url("sliders"))
        dashboard.wait_for_function(
            f"() => {{ const m = /sessions: (\\d+).*connections: (\\d+)/.exec(({TOTALS_JS})() || '');"
            f" return m !== null && +m[1] >= {sessions + 3} && +m[2] >= {connections + 3} }}")
        assert dashboard.locator(".bk-Column, .bk-DataTable, canvas").count() > 0
        dashboard.screenshot(path=str(artifacts_dir / "admin-dashboard.png"), full_page=True)
        assert errors == []
    finally:
        clients.close()
        context.close()


def test_users_who_are_not_staff_get_nothing(server, chromium_browser):
    context = chromium_browser.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        page = log_in(context, server, "walker", "walker-pw", admin=False)
        for path in ("/admin/bokehserver/bokehsession/", "/admin/bokehserver/bokehsession/dashboard/"):
            page.goto(server.url + path)
            assert "/admin/login/" in page.url  # the admin asks for a staff login
        response = page.goto(server.url + "/bokehserver-dashboard")
        assert response.status == 403
    finally:
        context.close()
