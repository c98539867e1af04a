"""More than one server process on one Redis: every process serves every session, whoever built it."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psutil
import pytest
from bokeh.util.token import get_session_id

from bokehws import BokehSocket, page_token
from cpu_cores import one_core, thread_cores
from processes import REPO_ROOT
from waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

RELAY_APP = Path(__file__).resolve().parent / "relay_app"


@pytest.fixture
def hook_file(tmp_path):
    path = tmp_path / "sessions-built.txt"
    path.touch()
    return path


def sessions_built(hook_file: Path) -> list[tuple[str, int]]:
    """(session id, pid) of every on_session_created the app ran."""
    return [(line.split()[0], int(line.split()[1])) for line in hook_file.read_text().splitlines() if line.strip()]


def server_env(redis_url: str, hook_file: Path, **extra: str) -> dict[str, str]:
    return {"BOKEHSERVER_REDIS_URL": redis_url, "RELAY_APP_HOOK_FILE": str(hook_file), **extra}


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/relay_app/ws"


def check_one_live_session(socket: BokehSocket, built_by: int | None = None) -> dict:
    """The socket's document: its widget change comes back through the app's callback, its ticks arrive."""
    models = socket.pull()
    if built_by is not None:
        assert models["pid"]["attributes"]["text"] == str(built_by)
    msgid = socket.set_value(models["slider"]["id"], "value", 42)
    socket.wait_for_change(models["echo"]["id"], "text", lambda text: text == "42")
    socket.wait_for_reply(msgid, "OK")
    first = int(socket.wait_for_change(models["ticks"]["id"], "text", lambda text: True))
    socket.wait_for_change(models["ticks"]["id"], "text", lambda text: int(text) > first)
    return models


def test_a_page_from_one_process_and_its_websocket_on_another_share_one_session(
        bokeh_server_factory, redis_url, hook_file):
    env = server_env(redis_url, hook_file)
    owner = bokeh_server_factory(str(RELAY_APP), env=env)
    other = bokeh_server_factory(str(RELAY_APP), env=env)
    token = page_token(owner.app_url("relay_app"))
    session_id = get_session_id(token)
    socket = BokehSocket(ws_url(other), token)
    try:
        check_one_live_session(socket, built_by=owner.pid)
        assert sessions_built(hook_file) == [(session_id, owner.pid)]
        # a second tab of the same page, on the owner itself, shares the document and sees the change
        local = BokehSocket(ws_url(owner), token)
        try:
            models = local.pull()
            assert models["echo"]["attributes"]["text"] == "42"
            local.set_value(models["slider"]["id"], "value", 7)
            socket.wait_for_change(models["echo"]["id"], "text", lambda text: text == "7")
        finally:
            local.close()
    finally:
        socket.close()
    assert sessions_built(hook_file) == [(session_id, owner.pid)]
    assert owner.log_problems() == [] and other.log_problems() == []


def worker_pids(server) -> set[int]:
    return {child.pid for child in psutil.Process(server.pid).children()}


def test_num_procs_two_serves_every_page_with_one_session_each_in_its_worker(bokeh_server_factory, redis_url, hook_file, e2e_database):
    server = bokeh_server_factory(str(RELAY_APP), "--num-procs", "2", env=server_env(redis_url, hook_file))
    workers = wait_until(lambda: worker_pids(server) if len(worker_pids(server)) == 2 else None)
    assert server.pid not in workers
    builders: set[int] = set()
    for _ in range(8):
        token = page_token(server.app_url("relay_app"))
        socket = BokehSocket(ws_url(server), token)
        try:
            models = check_one_live_session(socket)
            builders.add(int(models["pid"]["attributes"]["text"]))
        finally:
            socket.close()
    built = sessions_built(hook_file)
    assert len(built) == 8 and len({session_id for session_id, _ in built}) == 8, built
    assert builders <= workers
    # each websocket was served by the worker that built its session (handed over to it, not relayed)
    log = server.log_text()
    assert all(f"WebSocket connection opened for /relay_app session {session_id}" in log for session_id, _ in built), log
    assert server.log_problems() == []


def test_killed_worker_is_replaced_and_its_pages_get_fresh_sessions(bokeh_server_factory, redis_url, hook_file, e2e_database):
    env = server_env(redis_url, hook_file, BOKEHSERVER_RELAY_PING_MS="300", BOKEHSERVER_RELAY_OPEN_TIMEOUT_MS="1500",
                     BOKEHSERVER_RECORD_HEARTBEAT_MS="500")
    server = bokeh_server_factory(str(RELAY_APP), "--num-procs", "2", env=env)
    workers = wait_until(lambda: worker_pids(server) if len(worker_pids(server)) == 2 else None)
    # a page whose session lives in one worker, and its websocket
    token = page_token(server.app_url("relay_app"))
    socket = BokehSocket(ws_url(server), token)
    victim = int(check_one_live_session(socket)["pid"]["attributes"]["text"])
    session_id = get_session_id(token)

    def record_of_victim():
        with closing(sqlite3.connect(e2e_database, timeout=30)) as db:
            return db.execute("SELECT id, destroyed_at FROM bokehserver_bokehsession WHERE session_id = ? AND pid = ?",
                              (session_id, victim)).fetchone()

    assert wait_until(record_of_victim)[1] is None
    os.kill(victim, signal.SIGKILL)
    # the socket ends: dropped with its process, or closed by the process relaying it
    with pytest.raises(Exception):
        while True:
            socket.read()
    socket.close()
    replaced = wait_until(lambda: worker_pids(server) if len(worker_pids(server)) == 2 and victim not in worker_pids(server) else None)
    assert replaced & workers  # the survivor is still there
    # reloading the page: a fresh session from a live worker
    fresh_token = page_token(server.app_url("relay_app"))
    fresh = BokehSocket(ws_url(server), fresh_token)
    try:
        assert int(check_one_live_session(fresh)["pid"]["attributes"]["text"]) in replaced
    finally:
        fresh.close()
    # the old page's token, opened again: its owner is gone, so a fresh session from the token
    again = BokehSocket(ws_url(server), token)
    try:
        assert int(check_one_live_session(again)["pid"]["attributes"]["text"]) in replaced
    finally:
        again.close()
    assert [pid for sid, pid in sessions_built(hook_file) if sid == session_id][0] == victim
    # the dead worker's records are marked ended by a live one
    wait_until(lambda: record_of_victim()[1] is not None)
    problems = [line for line in server.log_problems() if "was killed by signal 9" not in line]
    assert problems == []
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0
    assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in replaced)


BROADCAST_SCRIPT = (
    "from bokehserver import broadcast_sync; "
    "broadcast_sync('/relay_app', 'examples.broadcasts.set_text', 'echo', 'from a command')"
)


def test_a_broadcast_from_a_management_command_reaches_sessions_in_every_process(
        bokeh_server_factory, redis_url, hook_file, e2e_database):
    env = server_env(redis_url, hook_file)
    first = bokeh_server_factory(str(RELAY_APP), env=env)
    second = bokeh_server_factory(str(RELAY_APP), env=env)
    here = BokehSocket(ws_url(first), page_token(first.app_url("relay_app")))
    there = BokehSocket(ws_url(second), page_token(second.app_url("relay_app")))
    relayed = BokehSocket(ws_url(second), page_token(first.app_url("relay_app")))
    try:
        sockets = [(socket, socket.pull()["echo"]["id"]) for socket in (here, there, relayed)]
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", BROADCAST_SCRIPT], cwd=REPO_ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "BOKEHSERVER_DB": str(e2e_database),
                 "BOKEHSERVER_REDIS_URL": redis_url},
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        for socket, echo_id in sockets:
            socket.wait_for_change(echo_id, "text", lambda text: text == "from a command")
    finally:
        for socket in (here, there, relayed):
            socket.close()
    assert first.log_problems() == [] and second.log_problems() == []


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="placing threads needs os.sched_setaffinity (Linux)")
@pytest.mark.parametrize("options", [("--pin-cores",), ()], ids=["pin-cores", "default"])
def test_workers_each_keep_to_a_core_of_their_own_and_serve(bokeh_server_factory, redis_url, hook_file, options):
    server = bokeh_server_factory(str(RELAY_APP), "--num-procs", "2", *options, env=server_env(redis_url, hook_file))
    workers = wait_until(lambda: worker_pids(server) if len(worker_pids(server)) == 2 else None)
    for _ in range(4):  # sessions in both workers, their app-code threads started after pinning
        socket = BokehSocket(ws_url(server), page_token(server.app_url("relay_app")))
        try:
            check_one_live_session(socket)
        finally:
            socket.close()
    cores = [one_core(pid) for pid in sorted(workers)]
    assert all(cores), [thread_cores(pid) for pid in workers]
    assert len(next(iter(thread_cores(server.pid)))) > 1  # the supervisor itself is not pinned
    if options:  # for good
        assert "runs on CPU core" in server.log_text()
        assert len(os.sched_getaffinity(0)) == 1 or cores[0] != cores[1]
    else:  # each starts on its own core; a worker crowded by the test's own processes may move since
        started = set(re.findall(r"kept on CPU core (\d+) \(the worker's own core\)", server.log_text()))
        assert len(started) == min(2, len(os.sched_getaffinity(0))), server.log_tail(20)
