"""What bokehserver's daphne server changes in autobahn: the handshake's config dump, how messages are written."""
from __future__ import annotations

import pprint
from collections import deque
from types import SimpleNamespace

import autobahn.websocket.protocol as autobahn_protocol
import pytest
import txaio
from packaging.version import Version

from bokehserver import daphne_server
from bokehserver._compat import daphne as compat_daphne
from bokehserver._compat import versions
from bokehserver.frames import websocket_bytes


@pytest.fixture
def unproven_autobahn(monkeypatch):
    """autobahn at a version none of the shortcuts was proven on."""
    real = versions.installed
    monkeypatch.setattr(versions, "installed", lambda dist: Version("99.1.1") if dist == "autobahn" else real(dist))
    monkeypatch.setattr(versions, "_reported", set())


@pytest.fixture
def restore_pformat():
    yield
    compat_daphne.install_config_dump_shortcut(True)


def test_autobahn_formats_its_config_only_when_its_debug_lines_are_logged(restore_pformat):
    assert compat_daphne.install_config_dump_shortcut(True)
    assert autobahn_protocol.pformat is compat_daphne.pformat_if_logged
    config = [("autoPingInterval", 0, "WebSocketServerFactory")] * 40
    level = txaio.get_global_log_level()
    try:
        txaio.set_global_log_level("info")
        assert autobahn_protocol.pformat(config) == "(autobahn debug logging is off)"
        txaio.set_global_log_level("debug")
        assert "autoPingInterval" in autobahn_protocol.pformat(config)
    finally:
        txaio.set_global_log_level(level)


def test_autobahn_keeps_its_config_dump_when_shortcuts_are_off_or_unproven(restore_pformat, unproven_autobahn, caplog):
    assert not compat_daphne.install_config_dump_shortcut(False)
    assert autobahn_protocol.pformat is pprint.pformat
    assert not compat_daphne.install_config_dump_shortcut(True)
    assert autobahn_protocol.pformat is pprint.pformat
    assert "autobahn 99.1.1" in caplog.text


def test_the_frame_writer_is_autobahns_own_when_shortcuts_are_off_or_unproven(unproven_autobahn):
    assert compat_daphne.frame_writer(False) is compat_daphne.send_each_frame
    assert compat_daphne.frame_writer(True) is compat_daphne.send_each_frame
    protocol = open_protocol(compat_daphne.frame_writer(True))
    protocol._send_frames(["header", b"\x00\x01"])
    assert protocol.sent == [(b"header", False), (b"\x00\x01", True)]
    assert protocol.transport.written == []


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


def open_protocol(writer=None) -> daphne_server.ReasonedWebSocketProtocol:
    protocol = daphne_server.ReasonedWebSocketProtocol()
    protocol.factory = SimpleNamespace(write_frames=writer or compat_daphne.frame_writer(True))
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


def test_the_send_backlog_extension_reports_the_bytes_the_kernel_refused():
    import gc
    import weakref

    protocol = open_protocol()
    protocol.transport = SimpleNamespace(dataBuffer=b"0123456789", offset=4, _tempDataLen=3)
    ref = weakref.ref(protocol)
    assert daphne_server._refused(ref) == 6  # not the 3 bytes written since, which wait for the loop
    protocol.transport.offset, protocol.transport._tempDataLen = 10, 0
    assert daphne_server._refused(ref) == 0
    protocol.transport.dataBuffer = b"x"
    del protocol
    gc.collect()
    assert daphne_server._refused(ref) == 0  # a closed, freed socket holds nothing back
