"""Two runbokeh processes on one Redis channel layer: the admin of one expires a session of the other."""
from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import sqlite3
import subprocess
import sys
import urllib.parse
import urllib.request
from contextlib import closing

import pytest
from bokeh.util.token import get_session_id

from processes import REPO_ROOT
from waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class AdminBrowser:
    """Just enough of a browser to log into the Django admin and run a changelist action."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base_url + path, timeout=60) as response:
            return response.read().decode()

    def post(self, path: str, form: list[tuple[str, str]]) -> str:
        csrf = CSRF_RE.search(self.get(path)).group(1)
        data = urllib.parse.urlencode([("csrfmiddlewaretoken", csrf), *form]).encode()
        request = urllib.request.Request(self.base_url + path, data=data, headers={"Referer": self.base_url + path})
        with self.opener.open(request, timeout=60) as response:
            return response.read().decode()


@pytest.fixture(scope="module")
def two_servers(bokeh_server_factory, free_port, e2e_database, redis_url):
    """Two runbokeh processes on one Redis channel layer, and a superuser for their admin."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "BOKEHSERVER_DB": str(e2e_database),
           "DJANGO_SUPERUSER_PASSWORD": "secret-pw"}
    subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "boss",
                    "--email", "boss@example.com"], cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=120)
    owner = bokeh_server_factory(port=free_port(), env={"BOKEHSERVER_REDIS_URL": redis_url})
    other = bokeh_server_factory(port=free_port(), env={"BOKEHSERVER_REDIS_URL": redis_url})
    return owner, other


def kill_redis_connections_of(pid: int, redis_url: str) -> int:
    """CLIENT KILL every Redis connection that process ``pid`` holds; returns how many went."""
    import psutil

    redis = urllib.parse.urlsplit(redis_url)
    ports = [c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
             if c.raddr and c.raddr.port == redis.port]
    killed = 0
    with socket.create_connection((redis.hostname, redis.port), timeout=10) as sock:
        for port in ports:
            sock.sendall(f"CLIENT KILL ADDR 127.0.0.1:{port}\r\n".encode())
            killed += sock.recv(256).strip() == b":1"  # the number of clients killed
    return killed


def expire_from_the_other_admin(owner, other, e2e_database) -> str:
    """Open a session on ``owner``, expire it from ``other``'s admin; check the socket's close and the record."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with urllib.request.urlopen(owner.app_url("sliders"), timeout=30) as response:
        token = TOKEN_RE.search(response.read().decode()).group(1)
    ws_url = owner.url.replace("http://", "ws://") + "/sliders/ws"
    with connect(ws_url, subprotocols=["bokeh", token], open_timeout=30) as ws:
        assert '"ACK"' in ws.recv(timeout=30)
        session_id = get_session_id(token)

        def live_record():
            with closing(sqlite3.connect(e2e_database, timeout=30)) as db:
                return db.execute(
                    "SELECT id, pid FROM bokehserver_bokehsession WHERE session_id = ? "
                    "AND destroyed_at IS NULL AND connections = 1", (session_id,)).fetchone()

        record_id, pid = wait_until(live_record)
        assert pid == owner.pid

        admin = AdminBrowser(other.url)
        admin.post("/admin/login/?next=/admin/", [("username", "boss"), ("password", "secret-pw"), ("next", "/admin/")])
        page = admin.post("/admin/bokehserver/bokehsession/",
                          [("action", "end_sessions"), ("_selected_action", str(record_id)), ("index", "0")])

        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=30)
        assert closed.value.rcvd.code == 4010
        assert closed.value.rcvd.reason == "session ended: ended by an administrator"

    def destroyed():
        with closing(sqlite3.connect(e2e_database, timeout=30)) as db:
            return db.execute("SELECT destroyed_at FROM bokehserver_bokehsession WHERE id = ?", (record_id,)).fetchone()[0]

    wait_until(destroyed)
    return page


def test_admin_on_one_process_expires_a_session_living_in_another(two_servers, e2e_database):
    owner, other = two_servers
    page = expire_from_the_other_admin(owner, other, e2e_database)
    assert "Ended 1 sessions (0 in this process, 1 in other processes)" in page, re.findall(r'<li class="(?:success|warning)">(.*?)</li>', page)
    assert owner.log_problems() == [] and other.log_problems() == []


def test_the_control_listener_survives_a_killed_redis_connection(two_servers, e2e_database, redis_url):
    owner, other = two_servers
    assert kill_redis_connections_of(owner.pid, redis_url) >= 1
    wait_until(lambda: "Control listener rejoined the channel layer" in owner.log_text())
    assert [line for line in owner.log_problems() if "Control listener lost the channel layer" in line]
    page = expire_from_the_other_admin(owner, other, e2e_database)
    assert "Ended 1 sessions (0 in this process, 1 in other processes)" in page, re.findall(r'<li class="(?:success|warning)">(.*?)</li>', page)


def test_the_admin_of_one_process_shows_the_live_state_of_a_session_in_another(two_servers, e2e_database):
    from websockets.sync.client import connect

    owner, other = two_servers
    with urllib.request.urlopen(owner.app_url("sliders"), timeout=30) as response:
        token = TOKEN_RE.search(response.read().decode()).group(1)
    session_id = get_session_id(token)
    ws_url = owner.url.replace("http://", "ws://") + "/sliders/ws"
    with connect(ws_url, subprotocols=["bokeh", token], open_timeout=30, user_agent_header="remote-agent/2") as ws:
        assert '"ACK"' in ws.recv(timeout=30)

        def live_record():
            with closing(sqlite3.connect(e2e_database, timeout=30)) as db:
                return db.execute("SELECT id FROM bokehserver_bokehsession WHERE session_id = ? "
                                  "AND connections = 1", (session_id,)).fetchone()

        [record_id] = wait_until(live_record)
        admin = AdminBrowser(other.url)
        admin.post("/admin/login/?next=/admin/", [("username", "boss"), ("password", "secret-pw"), ("next", "/admin/")])
        page = admin.get(f"/admin/bokehserver/bokehsession/{record_id}/change/")
    assert f"Live state (from {socket.gethostname()}:{owner.pid})" in page
    assert "remote-agent/2" in page  # its connection, as the owner sees it
    assert re.search(r'<div class="readonly">Sliders</div>', page) and "<li>Row " in page  # its title and root
