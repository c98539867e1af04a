"""A real runbokeh against clients that misbehave on the wire: they never read, or break the protocol."""
from __future__ import annotations

import contextlib
import http.client
import json
import re
import signal
import socket
import sqlite3
import struct
import sys
import time

import pytest
from bokeh.util.token import get_session_id

import rawws
from processes import REPO_ROOT, run_in_group
from waiting import wait_until

pytestmark = pytest.mark.e2e

SEND_QUEUE = 200_000


@pytest.fixture(scope="module")
def server(bokeh_server_factory):
    return bokeh_server_factory("--websocket-max-send-queue", str(SEND_QUEUE))


def test_a_client_that_floods_and_never_reads_is_closed_past_the_send_queue_limit(server):
    """The server stops reading a client that sends faster than its session answers, and closes it
    once its unread replies pass the send queue limit: neither queue grows without bound."""
    sock = rawws.connect(server.port, "/sliders/ws", rawws.bokeh_token(), rcvbuf=4096)
    request = rawws.message_bytes("PULL-DOC-REQ")
    deadline = time.monotonic() + 120
    try:
        # each request earns a whole document this client never reads
        while "left" not in server.log_text() and time.monotonic() < deadline:
            sock.sendall(request * 20)
    except OSError:  # reset by the server
        pass
    finally:
        sock.close()
    line = wait_until(
        lambda: next((l for l in server.log_text().splitlines() if "bytes unread" in l), None),
        what="the server logs that it closed the socket of a client that does not read",
    )
    assert "WARNING" in line and "WEBSOCKET_MAX_SEND_QUEUE" in line
    # the server carries on for clients that read
    other = rawws.connect(server.port, "/sliders/ws", rawws.bokeh_token())
    try:
        assert rawws.read_json_frame(other)["msgtype"] == "ACK"
    finally:
        other.close()
    assert server.log_problems() == []


LIFECYCLE = """
import os


def _note(line):
    with open(os.environ["HOOKS_LOG"], "a") as log:
        log.write(line + "\\n")

def on_server_loaded(server_context):
    _note("server loaded")

def on_server_unloaded(server_context):
    _note("server unloaded")

def on_session_destroyed(session_context):
    _note("session destroyed " + session_context.id)
"""


@pytest.fixture
def hooked_app(tmp_path):
    app = tmp_path / "hooked"
    app.mkdir()
    (app / "main.py").write_text("from bokeh.io import curdoc\nfrom bokeh.models import Div\ncurdoc().add_root(Div(text='hi'))\n")
    (app / "server_lifecycle.py").write_text(LIFECYCLE)
    return app, tmp_path / "hooks.log"


def hook_lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def session_rows(database, pid: int) -> list[tuple[str, object]]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return db.execute("SELECT session_id, destroyed_at FROM bokehserver_bokehsession WHERE pid = ?", (pid,)).fetchall()


def test_sigterm_closes_sockets_with_a_reason_runs_every_hook_and_exits_0(bokeh_server_factory, hooked_app, e2e_database):
    app, hooks = hooked_app
    server = bokeh_server_factory(str(app), env={"HOOKS_LOG": str(hooks)})
    sessions = []
    sockets = []
    for _ in range(3):
        token = rawws.bokeh_token()
        sock = rawws.connect(server.port, "/hooked/ws", token)
        assert rawws.read_json_frame(sock)["msgtype"] == "ACK"
        sessions.append(get_session_id(token))
        sockets.append(sock)
    page = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)  # kept alive across the SIGTERM
    page.request("GET", "/hooked")
    assert page.getresponse().read()
    wait_until(lambda: len(session_rows(e2e_database, server.pid)) == 4, what="the session records are written")

    server.send_signal(signal.SIGTERM)
    for sock in sockets:
        assert rawws.read_close(sock) == (1000, "Server shutting down")
        sock.sendall(rawws.frame_bytes(b"\x03\xe8", opcode=0x8))
    # a request on a connection opened before the shutdown starts nothing new
    try:
        page.request("GET", "/hooked")
        status = page.getresponse().status
    except (OSError, http.client.HTTPException):
        status = None
    assert status in (503, None)
    assert server.wait(timeout=60) == 0
    for sock in sockets:
        sock.close()
    page.close()

    lines = hook_lines(hooks)
    assert lines.count("server loaded") == 1, lines
    assert lines[-1] == "server unloaded", lines
    destroyed = {line.split()[-1] for line in lines if line.startswith("session destroyed")}
    assert set(sessions) <= destroyed and len(destroyed) == 4, lines
    assert all(ended is not None for _, ended in session_rows(e2e_database, server.pid))
    assert server.log_problems() == []


def test_a_port_that_is_taken_exits_non_zero_with_a_message(server, tmp_path, monkeypatch):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "project.settings")
    monkeypatch.setenv("BOKEHSERVER_DB", str(tmp_path / "db.sqlite3"))
    result = run_in_group(
        [sys.executable, "manage.py", "runbokeh", "--port", str(server.port), "--address", "127.0.0.1"], timeout=120,
    )
    assert result.returncode != 0
    assert f"could not listen on 127.0.0.1:{server.port}" in result.stderr


@pytest.mark.parametrize("path, host", [
    ("/sliders", "bad host!"),
    ("/static/js/%00bokeh.min.js", None),
    ("/sliders/autoload.js?bokeh-autoload-element=e1&bokeh-absolute-url=http://[::1", None),
])
def test_bad_requests_get_no_debug_page(server, path, host):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    assert response.status >= 400, (response.status, body[:200])
    for leak in ("Traceback", "DEBUG = True", "settings", str(REPO_ROOT)):
        assert leak not in body, (leak, body[:400])


def test_records_of_a_killed_process_are_ended_by_another_process(bokeh_server_factory, hooked_app, e2e_database):
    app, hooks = hooked_app
    env = {"HOOKS_LOG": str(hooks), "BOKEHSERVER_RECORD_HEARTBEAT_MS": "500"}
    doomed = bokeh_server_factory(str(app), env=env)
    sock = rawws.connect(doomed.port, "/hooked/ws", rawws.bokeh_token())
    assert rawws.read_json_frame(sock)["msgtype"] == "ACK"
    wait_until(lambda: session_rows(e2e_database, doomed.pid), what="the doomed process writes its session record")
    survivor = bokeh_server_factory(str(app), env=env)

    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(timeout=60) == -signal.SIGKILL
    sock.close()

    wait_until(
        lambda: all(ended is not None for _, ended in session_rows(e2e_database, doomed.pid)),
        what="the surviving process marks the killed process's records as ended",
    )
    assert survivor.running and survivor.log_problems() == []


@pytest.mark.parametrize("frame, code", [
    (rawws.frame_bytes(b"\xff\xfe not utf-8", opcode=0x1), 1007),
    # a header announcing 64 MiB, over the 20 MiB limit: refused before the payload comes
    (struct.pack("!BBQ", 0x82, 0x80 | 127, 64 * 2**20) + b"\0\0\0\0" + b"x" * 100, 1009),
])
def test_websocket_protocol_violations_get_a_close_frame_with_the_code(server, frame, code):
    sock = rawws.connect(server.port, "/sliders/ws", rawws.bokeh_token())
    try:
        assert rawws.read_json_frame(sock)["msgtype"] == "ACK"
        sock.sendall(frame)
        assert rawws.read_close(sock)[0] == code
    finally:
        sock.close()


@pytest.mark.parametrize("frames", [
    [json.dumps({"msgid": "d1", "msgtype": "PULL-DOC-REQ"}), "{}", "[" * 100_000 + "]" * 100_000],
    ['{"msgid": "n1", "msgtype": "PULL-DOC-REQ", "num_buffers": ' + "9" * 5000 + "}", "{}", "{}"],
    [json.dumps({"msgtype": "PULL-DOC-REQ"}), "{}", "{}"],
], ids=["deep-nesting", "huge-number", "no-msgid"])
def test_input_that_broke_the_consumer_is_closed_4001_by_the_real_server(server, frames):
    sock = rawws.connect(server.port, "/sliders/ws", rawws.bokeh_token())
    try:
        assert rawws.read_json_frame(sock)["msgtype"] == "ACK"
        sock.sendall(b"".join(rawws.frame_bytes(frame) for frame in frames))
        code, reason = rawws.read_close(sock)
    finally:
        sock.close()
    assert code == 4001 and reason
    assert server.log_problems() == []


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_one_address_past_its_session_limit_is_refused_until_its_sessions_expire(bokeh_server_factory):
    server = bokeh_server_factory("--unused-session-lifetime", "1000", "--check-unused-sessions", "300",
                                  env={"BOKEHSERVER_MAX_SESSIONS_PER_ADDRESS": "2"})
    assert _get(server.port, "/sliders")[0] == 200
    sock = rawws.connect(server.port, "/widgets/ws", rawws.bokeh_token())  # the limit spans apps
    try:
        assert rawws.read_json_frame(sock)["msgtype"] == "ACK"
        status, body = _get(server.port, "/sliders")
        assert (status, body) == (503, "127.0.0.1 already has 2 sessions (MAX_SESSIONS_PER_ADDRESS)")
        refused = rawws.connect(server.port, "/sliders/ws", rawws.bokeh_token())
        try:
            assert rawws.read_close(refused) == (4029, "127.0.0.1 already has 2 sessions (MAX_SESSIONS_PER_ADDRESS)")
        finally:
            refused.close()
        # the connected session still works
        sock.sendall(rawws.message_bytes("PULL-DOC-REQ"))
        wait_until(lambda: rawws.read_json_frame(sock).get("msgtype") == "PULL-DOC-REPLY",
                   what="the reply to PULL-DOC-REQ (after the ACK's other frames)")
    finally:
        sock.close()
    # once the unused sessions expire, the address gets sessions again
    wait_until(lambda: _get(server.port, "/sliders")[0] == 200, what="a page once the old sessions expired")
    warnings = [line for line in server.log_text().splitlines() if "MAX_SESSIONS_PER_ADDRESS" in line]
    assert len(warnings) >= 2 and all("WARNING" in line for line in warnings), warnings
    assert server.log_problems() == []


def _pipeline(port: int, path: str, count: int) -> bytes:
    """Write ``count`` GET requests at once on one connection; return everything read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode() * count)
        received = b""
        while chunk := sock.recv(1 << 16):
            received += chunk
    return received


def test_a_connection_pipelining_past_the_limit_gets_503_and_is_closed(server):
    received = _pipeline(server.port, "/", 2000)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", received)
    assert statuses == [b"200"] * 16 + [b"503"], statuses[:20]
    assert received.endswith(b"too many pipelined requests on one connection (MAX_PIPELINED_REQUESTS)")
    line = wait_until(lambda: next((l for l in server.log_text().splitlines() if "MAX_PIPELINED_REQUESTS" in l), None),
                      what="the server logs the refused connection")
    assert "WARNING" in line and "127.0.0.1" in line
    # a keep-alive client that waits for each answer is never refused, and the server carries on
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for _ in range(40):
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()
    assert server.log_problems() == []
