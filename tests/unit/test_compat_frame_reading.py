"""Incoming frames read by the shortcut reach the application as autobahn would hand them, and
everything else still meets autobahn: one read or many, control frames, fragments and violations."""
from __future__ import annotations

import struct

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.testing import StringTransport

from bokehserver._compat import daphne as compat_daphne
from bokehserver._compat.frame_reading import read_frames

MASK = b"\x5a\xc3\x0f\x91"


class Transport(StringTransport):
    def unregisterProducer(self) -> None:  # autobahn unregisters when it drops a connection, registered or not
        self.producer = None


class Recorder(WebSocketServerProtocol):
    close_on_first = False

    def onOpen(self) -> None:
        self.messages: list[tuple[bytes, bool]] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.messages.append((payload, isBinary))
        if self.close_on_first:
            self.sendClose(1000)


def open_socket(**options) -> Recorder:
    factory = WebSocketServerFactory("ws://127.0.0.1:5006")
    factory.protocol = Recorder
    factory.setProtocolOptions(autoPingInterval=0, **options)
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(Transport())
    protocol.dataReceived(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:5006\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert protocol.state == protocol.STATE_OPEN
    protocol.transport.clear()
    return protocol


def frame(payload: bytes | str, opcode: int | None = None, fin: bool = True, masked: bool = True) -> bytes:
    if isinstance(payload, str):
        payload, opcode = payload.encode(), 1 if opcode is None else opcode
    opcode = 2 if opcode is None else opcode
    size = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    key = (MASK * (size // 4 + 1))[:size]
    return head + MASK + bytes(a ^ b for a, b in zip(payload, key))


def received(reads: list[bytes], fast: bool, **options) -> tuple[list, bytes, dict, int]:
    """What the application got, what went back on the wire, autobahn's traffic counts and its state."""
    protocol = open_socket(**options)
    for data in reads:
        if fast:
            read_frames(protocol, data, compat_daphne.read_quietly)
        else:
            protocol._dataReceived(data)
    stats = {k: v for k, v in vars(protocol.trafficStats).items() if k.startswith("incoming")}
    return protocol.messages, protocol.transport.value(), stats, protocol.state


BOKEH_MESSAGE = [frame('{"msgid":"1","msgtype":"PATCH-DOC"}'), frame("{}"), frame('{"events":[' + '{"k":1},' * 40 + "{}]}")]

CASES = {
    "a Bokeh message in one read": [b"".join(BOKEH_MESSAGE)],
    "binary and empty frames": [frame(b"\x00\x01\x02") + frame(b"") + frame("")],
    "a 70,000-byte frame": [frame(b"x" * 70000)],
    "frames past the small size, unmasked natively": [frame(bytes(range(256)) * 32) + frame("é" * 1000) + BOKEH_MESSAGE[1]],
    "a ping between two frames": [BOKEH_MESSAGE[0] + frame(b"are you there", opcode=9) + BOKEH_MESSAGE[1]],
    "a fragmented message": [frame("abc", fin=False) + frame("def", opcode=0) + BOKEH_MESSAGE[1]],
    "invalid UTF-8": [BOKEH_MESSAGE[0] + frame(b"\xff\xfe", opcode=1) + BOKEH_MESSAGE[1]],
    "an unmasked frame": [BOKEH_MESSAGE[0] + frame("plain", masked=False)],
    "a length not in its shortest form": [BOKEH_MESSAGE[0] + b"\x81\xfe\x00\x05" + frame("hello")[2:]],
    "a close frame": [BOKEH_MESSAGE[0] + frame(struct.pack("!H", 1000) + b"bye", opcode=8) + BOKEH_MESSAGE[1]],
}


@pytest.mark.parametrize("case", CASES)
def test_the_application_and_the_peer_see_what_autobahn_gives(case):
    fast = received(CASES[case], fast=True)
    assert fast == received(CASES[case], fast=False)
    if case == "a Bokeh message in one read":
        assert [payload for payload, _ in fast[0]] == [b'{"msgid":"1","msgtype":"PATCH-DOC"}', b"{}", fast[0][2][0]]
        assert fast[0][2][0].startswith(b'{"events":[{"k":1},')


def test_frames_split_across_reads_at_any_byte_arrive_whole():
    data = b"".join(BOKEH_MESSAGE)
    expected = received([data], fast=False)
    for cut in range(1, len(data)):
        assert received([data[:cut], data[cut:]], fast=True) == expected, cut


def test_autobahns_size_limits_still_apply():
    data = [b"".join(BOKEH_MESSAGE)]
    for limit in ("maxFramePayloadSize", "maxMessagePayloadSize"):
        fast = received(data, fast=True, **{limit: 100})
        assert fast == received(data, fast=False, **{limit: 100})
        assert len(fast[0]) == 2 and fast[3] != Recorder.STATE_OPEN  # the third frame is too big: closed


def test_whole_plain_frames_do_not_reach_autobahn_and_the_rest_does():
    protocol, rest = open_socket(), []
    read_frames(protocol, b"".join(BOKEH_MESSAGE) + BOKEH_MESSAGE[0][:5], lambda p, data: rest.append(data))
    assert len(protocol.messages) == 3 and rest == [BOKEH_MESSAGE[0][:5]]
    assert compat_daphne.data_reader(True) is compat_daphne.read_plain_frames_first


def test_a_socket_the_application_closes_mid_read_goes_on_as_under_autobahn(monkeypatch):
    monkeypatch.setattr(Recorder, "close_on_first", True)
    data = [b"".join(BOKEH_MESSAGE)]
    fast = received(data, fast=True)
    assert fast == received(data, fast=False)
    assert fast[3] == Recorder.STATE_CLOSING and fast[1].startswith(b"\x88")  # our close frame went out
