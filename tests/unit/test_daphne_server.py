"""What bokehserver's daphne server changes in autobahn: the handshake's config dump, how messages are written."""
from __future__ import annotations

from collections import deque

import autobahn.websocket.protocol as autobahn_protocol
import txaio

from bokehserver import daphne_server
from bokehserver.frames import websocket_bytes


def test_autobahn_formats_its_config_only_when_its_debug_lines_are_logged():
    assert autobahn_protocol.pformat is daphne_server._pformat_if_logged
    config = [("autoPingInterval", 0, "WebSocketServerFactory")] * 40
    level = txaio.get_global_log_level()
    try:
        txaio.set_global_log_level("info")
        assert daphne_server._pformat_if_logged(config) == "(autobahn debug logging is off)"
        txaio.set_global_log_level("debug")
        assert "autoPingInterval" in daphne_server._pformat_if_logged(config)
    finally:
        txaio.set_global_log_level(level)


class Transport:
    TLS = disconnecting = disconnected = False

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.dataBuffer, self._tempDataBuffer = b"", []

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self._tempDataBuffer.append(data)

    def doWrite(self) -> None:
        self._tempDataBuffer.clear()


def open_protocol() -> daphne_server.ReasonedWebSocketProtocol:
    protocol = daphne_server.ReasonedWebSocketProtocol()
    protocol.state = protocol.STATE_OPEN
    protocol.send_state = protocol.SEND_STATE_GROUND
    protocol._perMessageCompress = None
    protocol.send_queue = deque()
    protocol.transport = Transport()
    protocol.sent = []
    protocol.sendMessage = lambda payload, binary: protocol.sent.append((payload, binary))
    return protocol


def test_a_message_is_written_at_once_and_flushed():
    protocol = open_protocol()
    protocol._send_frames(["header", b"\x00\x01"])
    assert protocol.transport.written == [websocket_bytes(["header", b"\x00\x01"])]
    assert protocol.transport._tempDataBuffer == [] and protocol.sent == []


def test_autobahn_frames_the_message_when_it_is_compressing_or_queueing():
    for state in ("compressing", "queueing"):
        protocol = open_protocol()
        if state == "compressing":
            protocol._perMessageCompress = object()
        else:
            protocol.send_queue.append((b"ping", False))
        protocol._send_frames(["header", b"\x00\x01"])
        assert protocol.sent == [(b"header", False), (b"\x00\x01", True)], state
        assert protocol.transport.written == [], state


def test_a_message_for_a_closing_socket_is_dropped():
    protocol = open_protocol()
    protocol.state = protocol.STATE_CLOSING
    protocol._send_frames(["header"])
    assert protocol.transport.written == [] and protocol.sent == []
