"""What bokehserver's daphne server changes in autobahn: the handshake's config dump, how messages are written."""
from __future__ import annotations

import pprint
from collections import deque
from types import SimpleNamespace

import autobahn.twisted.websocket as autobahn_twisted
import autobahn.websocket.protocol as autobahn_protocol
import pytest
import txaio
from packaging.version import Version
from twisted.internet import tcp

from bokehserver import daphne_server, websocket_protocol
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


def open_protocol(writer=None) -> websocket_protocol.ReasonedWebSocketProtocol:
    protocol = websocket_protocol.ReasonedWebSocketProtocol()
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


def tcp_transport(takes: int | Exception | None, pending: bytes = b"") -> tcp.Server:
    """A TCP server transport (no socket) whose kernel takes ``takes`` bytes of the next direct send."""
    transport = tcp.Server.__new__(tcp.Server)
    transport.connected, transport.disconnecting, transport.disconnected = True, False, False
    transport._writeDisconnected = False
    transport.dataBuffer, transport.offset, transport._tempDataBuffer, transport._tempDataLen = pending, 0, [], 0
    transport.direct, transport.written = [], []

    def write_some(data: bytes) -> int | Exception:
        transport.direct.append(bytes(data))
        return len(data) if takes is None else takes

    transport.writeSomeData = write_some
    transport.write = transport.written.append
    transport.doWrite = lambda: None
    return transport


@pytest.mark.parametrize("takes", [None, 5, ConnectionResetError()])
def test_a_message_goes_straight_to_an_idle_socket_and_what_it_does_not_take_to_the_transport(takes):
    protocol = open_protocol()
    protocol.transport = tcp_transport(takes)
    data = websocket_bytes(["header", b"\x00\x01"])
    protocol._send_frames(["header", b"\x00\x01"])
    assert protocol.transport.direct == [data]
    assert protocol.transport.written == {None: [], 5: [data[5:]]}.get(takes, [data])


def test_a_message_waits_behind_what_the_transport_already_holds():
    protocol = open_protocol()
    protocol.transport = tcp_transport(None, pending=b"earlier")
    protocol._send_frames(["header"])
    assert protocol.transport.direct == [] and protocol.transport.written == [websocket_bytes(["header"])]


def test_small_frames_are_unmasked_as_rfc_6455_shows():
    # RFC 6455 5.7: a single-frame masked text message, "Hello"
    assert compat_daphne.SmallFrameUnmasker(bytes.fromhex("37fa213d")).process(bytes.fromhex("7f9f4d5158")) == b"Hello"


@pytest.mark.parametrize("size", [1, 3, 4, 5, 200, compat_daphne.SMALL_FRAME_BYTES])
def test_small_frame_unmasking_matches_autobahns_however_the_payload_is_split(size):
    mask, payload = b"\x9a\x01\xff\x42", bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    theirs = compat_daphne._upstream_create_xor_masker(mask, size).process(payload)
    for cut in sorted({0, 1, 2, 3, size // 2, size}):
        ours = compat_daphne.create_masker(mask, size)
        assert isinstance(ours, compat_daphne.SmallFrameUnmasker)
        assert ours.process(payload[:cut]) + ours.process(payload[cut:]) == theirs, cut
        assert ours.pointer() == size


def test_bigger_and_empty_frames_keep_autobahns_masker(restore_masker):
    mask = b"\x01\x02\x03\x04"
    assert not isinstance(compat_daphne.create_masker(mask, compat_daphne.SMALL_FRAME_BYTES + 1), compat_daphne.SmallFrameUnmasker)
    assert not isinstance(compat_daphne.create_masker(mask, 0), compat_daphne.SmallFrameUnmasker)
    assert compat_daphne.install_small_frame_unmasker(True)
    assert autobahn_protocol.create_xor_masker is compat_daphne.create_masker
    assert not compat_daphne.install_small_frame_unmasker(False)
    assert autobahn_protocol.create_xor_masker is compat_daphne._upstream_create_xor_masker


@pytest.fixture
def restore_masker():
    original = autobahn_protocol.create_xor_masker
    yield
    autobahn_protocol.create_xor_masker = original


def test_reads_skip_autobahns_debug_line_unless_debug_is_logged(monkeypatch):
    formatted: list[object] = []
    monkeypatch.setattr(autobahn_twisted, "hltype", lambda obj: formatted.append(obj) or "")
    protocol = open_protocol()
    protocol.factory.read_data = compat_daphne.data_reader(True)
    protocol.log = txaio.make_logger()
    protocol.data, protocol.current_frame, protocol.inside_message, protocol.applyMask = b"", None, False, True
    protocol.logOctets = protocol.logFrames = protocol.trackedTimings = False
    received: list[bytes] = []
    protocol._dataReceived = received.append
    protocol.dataReceived(b"\x81\x00")
    assert received == [b"\x81\x00"] and formatted == []
    monkeypatch.setattr(txaio, "get_global_log_level", lambda: "debug")
    protocol.dataReceived(b"\x81\x01")
    assert received == [b"\x81\x00", b"\x81\x01"] and len(formatted) == 1
    assert compat_daphne.data_reader(False) is compat_daphne._upstream_data_received


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
