"""A real runbokeh against clients that misbehave on the wire: they never read, or break the protocol."""
from __future__ import annotations

import time

import pytest

import rawws
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
