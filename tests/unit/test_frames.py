"""A Bokeh message's frames as the bytes a server writes (RFC 6455, section 5)."""
from __future__ import annotations

import struct

import numpy as np
from bokeh.core.serialization import Buffer
from bokeh.core.types import ID
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh.protocol import Protocol

from bokehserver.frames import message_frames, websocket_bytes


def read_frames(data: bytes) -> list[str | bytes]:
    """A client's reading of server frames: each must be final, unmasked, text or binary."""
    frames: list[str | bytes] = []
    while data:
        first, second = data[0], data[1]
        assert first & 0x80 and not first & 0x70 and second & 0x80 == 0  # FIN, no RSV bits, no mask
        size, offset = second & 0x7F, 2
        if size == 126:
            (size,), offset = struct.unpack("!H", data[2:4]), 4
        elif size == 127:
            (size,), offset = struct.unpack("!Q", data[2:10]), 10
        payload, data = data[offset:offset + size], data[offset + size:]
        assert len(payload) == size
        frames.append(payload.decode("utf-8") if first & 0x0F == 0x1 else payload)
        assert first & 0x0F in (0x1, 0x2)
    return frames


def test_the_rfcs_examples():
    # RFC 6455 section 5.7: an unmasked "Hello", and binary payloads of 256 bytes and 64 KiB
    assert websocket_bytes(["Hello"]) == b"\x81\x05Hello"
    assert websocket_bytes([b"\x00" * 256]) == b"\x82\x7e\x01\x00" + b"\x00" * 256
    assert websocket_bytes([b"\x00" * 65536]) == b"\x82\x7f" + (65536).to_bytes(8, "big") + b"\x00" * 65536


def test_every_length_boundary_and_empty_frames():
    frames = ["", b"", "é" * 63, b"x" * 125, b"x" * 126, "y" * 65535, b"z" * 65536]
    assert read_frames(websocket_bytes(frames)) == frames
    assert websocket_bytes(["é"])[:2] == b"\x81\x02"  # lengths count UTF-8 bytes


def test_a_message_with_buffers_reads_back_frame_for_frame():
    doc = Document()
    doc.add_root(ColumnDataSource(data={"x": np.arange(1000.0), "y": np.zeros(1000, dtype=np.int32)}))
    message = Protocol().create("PULL-DOC-REPLY", "1", doc)
    inline = len(message.buffers)  # bokeh 3.9 on sends the columns as buffers; before, inline
    message.add_buffer(Buffer(ID("extra"), np.arange(10, dtype=np.uint8).tobytes()))
    message.add_buffer(Buffer(ID("empty"), b""))
    frames = message_frames(message)
    assert len(frames) == 3 + 2 * (inline + 2)  # header, metadata, content, (ref, bytes) per buffer
    assert frames[-2:] == ('{"id": "empty"}', b"") and frames[-3] == bytes(range(10))
    assert read_frames(websocket_bytes(frames)) == list(frames)
