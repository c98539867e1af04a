"""The daphne seam: an application raises its socket's limits and closes with a reason, on proven versions only."""
from __future__ import annotations

import functools

import pytest
from packaging.version import Version

from bokehserver._compat import daphne_sockets as compat
from bokehserver._compat import versions


@pytest.fixture
def daphne_send():
    """daphne's ``send`` for one websocket (its Server's handle_reply bound to the protocol), unstarted."""
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol

    server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])  # not started: nothing listens
    server.connections = {}
    protocol = WebSocketProtocol()
    protocol.maxMessagePayloadSize = protocol.maxFramePayloadSize = 1024 * 1024
    protocol.state = protocol.STATE_OPEN
    closes = []
    protocol.sendClose = lambda code=None, reason=None: closes.append((code, reason))
    server.connections[protocol] = {}
    send = functools.partial(server.handle_reply, protocol)
    return send, protocol, closes


async def test_daphnes_limits_are_raised_and_close_reasons_sent(daphne_send):
    send, protocol, closes = daphne_send
    adopted = compat.adopt_daphne_websocket(send, 20 * 1024 * 1024)
    assert (protocol.maxMessagePayloadSize, protocol.maxFramePayloadSize) == (20 * 1024 * 1024,) * 2
    await adopted({"type": "websocket.close", "code": 4003, "reason": "Invalid token signature"})
    assert closes == [(4003, "Invalid token signature")]


def test_a_larger_or_disabled_daphne_limit_is_kept(daphne_send):
    send, protocol, _ = daphne_send
    protocol.maxMessagePayloadSize, protocol.maxFramePayloadSize = 64 * 1024 * 1024, 0
    compat.adopt_daphne_websocket(send, 20 * 1024 * 1024)
    assert (protocol.maxMessagePayloadSize, protocol.maxFramePayloadSize) == (64 * 1024 * 1024, 0)


def test_other_servers_and_unproven_versions_get_send_unchanged(daphne_send, monkeypatch):
    async def uvicorn_like_send(message):
        pass

    assert compat.adopt_daphne_websocket(uvicorn_like_send, 10) is uvicorn_like_send
    send, protocol, _ = daphne_send
    real = versions.installed
    monkeypatch.setattr(versions, "_reported", set())
    monkeypatch.setattr(versions, "installed", lambda dist: Version("1.0") if dist == "daphne" else real(dist))
    assert compat.adopt_daphne_websocket(send, 20 * 1024 * 1024) is send
    assert protocol.maxMessagePayloadSize == 1024 * 1024
    monkeypatch.undo()
    assert versions.proven("plain daphne sockets")
