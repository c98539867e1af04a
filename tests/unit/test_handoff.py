"""Handing a connection to a sibling worker: the descriptor and request reach the sibling, only within one group."""
from __future__ import annotations

import asyncio
import socket

import pytest
from bokeh.util.token import generate_jwt_token

from bokehserver import handoff as handoff_module
from bokehserver.handoff import HANDOFF_KEY, Handoffs, send_connection

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_PASSCRED"), reason="abstract Unix sockets are Linux's")

REQUEST = b"GET /app/ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"


@pytest.fixture
async def sibling():
    """A worker of group "g" that records what it is handed: (request, received socket)."""
    adopted: asyncio.Queue[tuple[bytes, socket.socket]] = asyncio.Queue()
    handoffs = Handoffs()
    handoffs.serve("g", lambda fd, request: adopted.put_nowait((request, socket.socket(fileno=fd))))
    yield handoffs, adopted
    handoffs.stop()


async def test_a_handed_connection_reaches_the_sibling_with_its_request(sibling):
    handoffs, adopted = sibling
    client, server_end = socket.socketpair()
    with client, server_end, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        assert send_connection(sender, handoffs.name, server_end.fileno(), REQUEST)
        request, received = await asyncio.wait_for(adopted.get(), 10)
        with received:
            assert request == REQUEST
            received.sendall(b"101")  # the sibling's copy is the same connection
            assert client.recv(3) == b"101"
    assert handoffs.adopted == 1


async def test_a_gone_sibling_does_not_take_the_connection(sibling):
    handoffs, _ = sibling
    name = handoffs.name
    handoffs.stop()
    client, server_end = socket.socketpair()
    with client, server_end, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        assert not send_connection(sender, name, server_end.fileno(), REQUEST)


async def test_only_workers_of_the_same_group_are_siblings(sibling):
    handoffs, _ = sibling
    other = Handoffs()
    other.serve("g", lambda fd, request: None)
    stranger = Handoffs()
    stranger.serve("h", lambda fd, request: None)
    try:
        assert other.is_sibling(handoffs.name) and handoffs.is_sibling(other.name)
        assert not handoffs.is_sibling(handoffs.name)
        assert not stranger.is_sibling(handoffs.name)
        assert not handoffs.is_sibling("bokehserver-relay:0123")
    finally:
        other.stop()
        stranger.stop()


async def test_a_socket_that_is_not_daphnes_is_kept(sibling):
    handoffs, adopted = sibling
    other = Handoffs()
    other.serve("g", lambda fd, request: None)
    try:
        async def send(message):
            pass

        assert not other.hand_off(handoffs.name, send)
        assert adopted.empty()
    finally:
        other.stop()


async def test_a_worker_outside_a_group_takes_no_connections_and_claims_none(web_app):
    app = web_app({"/app": lambda doc: None})
    app.relay.adopt_connections_with(object())
    app.relay.start()
    assert app.relay.handoffs.name is None
    assert HANDOFF_KEY not in await app.relay.claim()


async def test_a_worker_of_a_group_names_its_handoff_socket_in_tokens(web_app, monkeypatch):
    app = web_app({"/app": lambda doc: None})
    monkeypatch.setattr("bokehserver.relay.worker_group", lambda: "g")
    app.relay.adopt_connections_with(object())
    app.relay.start()
    try:
        claims = await app.relay.claim()
        assert claims[HANDOFF_KEY] == app.relay.handoffs.name
        assert claims[HANDOFF_KEY].startswith(handoff_module.NAME_PREFIX + "g/")
        token = generate_jwt_token("s" * 44, extra_payload=claims)
        scope = {"subprotocols": ["bokeh", token]}

        async def send(message):
            pass

        assert not app.relay.hand_off(scope, send)  # its own session: served here
    finally:
        app.relay.handoffs.stop()


async def test_a_datagram_without_a_connection_is_dropped_and_the_next_handoff_still_arrives(sibling, caplog):
    handoffs, adopted = sibling
    client, server_end = socket.socketpair()
    with client, server_end, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.sendto(REQUEST, "\0" + handoffs.name)  # no descriptor: not a connection to serve
        assert send_connection(sender, handoffs.name, server_end.fileno(), REQUEST)
        request, received = await asyncio.wait_for(adopted.get(), 10)
        received.close()
    assert request == REQUEST and handoffs.adopted == 1 and adopted.empty()
    assert "Dropped a handed-over connection" in caplog.text
