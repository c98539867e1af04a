"""Two runbokeh processes on one Redis channel layer: the admin of one expires a session of the other."""
from __future__ import annotations

import http.cookiejar
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import closing

import pytest

from conftest import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _poll(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


class AdminBrowser:
    """Just enough of a browser to log into the Django admin and run a changelist action."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base_url + path, timeout=15) as response:
            return response.read().decode()

    def post(self, path: str, form: list[tuple[str, str]]) -> str:
        csrf = CSRF_RE.search(self.get(path)).group(1)
        data = urllib.parse.urlencode([("csrfmiddlewaretoken", csrf), *form]).encode()
        request = urllib.request.Request(self.base_url + path, data=data, headers={"Referer": self.base_url + path})
        with self.opener.open(request, timeout=15) as response:
            return response.read().decode()


def test_admin_on_one_process_expires_a_session_living_in_another(bokeh_server_factory, free_port, e2e_database, redis_url):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "BOKEHSERVER_DB": str(e2e_database),
           "DJANGO_SUPERUSER_PASSWORD": "secret-pw"}
    subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "boss",
                    "--email", "boss@example.com"], cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=60)
    owner = bokeh_server_factory(port=free_port(), env={"BOKEHSERVER_REDIS_URL": redis_url})
    other = bokeh_server_factory(port=free_port(), env={"BOKEHSERVER_REDIS_URL": redis_url})

    with urllib.request.urlopen(owner.app_url("sliders"), timeout=15) as response:
        token = TOKEN_RE.search(response.read().decode()).group(1)
    ws_url = owner.url.replace("http://", "ws://") + "/sliders/ws"
    with connect(ws_url, subprotocols=["bokeh", token], open_timeout=15) as ws:
        assert '"ACK"' in ws.recv(timeout=15)
        ws.recv(timeout=5), ws.recv(timeout=5)

        def live_record():
            with closing(sqlite3.connect(e2e_database, timeout=10)) as db:
                return db.execute(
                    "SELECT id, pid FROM bokehserver_bokehsession WHERE app_path = '/sliders' "
                    "AND destroyed_at IS NULL AND connections = 1").fetchone()

        record_id, pid = _poll(live_record)
        assert pid == owner.pid

        admin = AdminBrowser(other.url)
        admin.post("/admin/login/?next=/admin/", [("username", "boss"), ("password", "secret-pw"), ("next", "/admin/")])
        page = admin.post("/admin/bokehserver/bokehsession/",
                          [("action", "expire"), ("_selected_action", str(record_id)), ("index", "0")])
        assert "asked other processes about 1" in page

        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=15)
        assert closed.value.rcvd.code == 4010
        assert closed.value.rcvd.reason == "session expired by the server"

    def destroyed():
        with closing(sqlite3.connect(e2e_database, timeout=10)) as db:
            return db.execute("SELECT destroyed_at FROM bokehserver_bokehsession WHERE id = ?", (record_id,)).fetchone()[0]

    assert _poll(destroyed)
    assert owner.log_problems() == [] and other.log_problems() == []
