"""A Bokeh message as the websocket frames that carry it: built once, sent to many sockets."""
from __future__ import annotations

import json
import struct
from typing import Any, Union

from bokeh.protocol.message import Message

__all__ = ("SEND_BACKLOG", "SEND_FRAMES", "Frames", "message_frames", "websocket_bytes")

# ASGI extension offered by bokehserver's daphne server in a websocket scope's "extensions":
# {"type": SEND_FRAMES, "frames": [str | bytes, ...]} sends one whole message in one event.
SEND_FRAMES = "bokehserver.websocket.send_frames"
# ASGI extension offered beside it: {"refused": callable} returning the bytes sent on the socket that
# the kernel refused, its buffer being full (0 where unknown); periodic callbacks wait for it to drain.
SEND_BACKLOG = "bokehserver.websocket.send_backlog"

Frame = Union[str, bytes]
Frames = tuple[Frame, ...]


def message_frames(message: Message[Any]) -> Frames:
    """Return header, metadata and content text frames, then a (text, binary) pair per buffer."""
    frames: list[Frame] = [message.header_json, message.metadata_json, message.content_json]
    for buffer in message.buffers:
        frames.append(json.dumps(buffer.ref))
        frames.append(buffer.to_bytes())
    return tuple(frames)


_TEXT, _BINARY, _FIN = 0x1, 0x2, 0x80


def websocket_bytes(frames: Frames | list[Frame]) -> bytes:
    """The frames as a server writes them on the wire (RFC 6455: unmasked, unfragmented, uncompressed).

    One write for a whole Bokeh message, without a websocket library's per-frame bookkeeping.
    """
    parts: list[bytes] = []
    for frame in frames:
        if isinstance(frame, str):
            payload, first = frame.encode("utf-8"), _FIN | _TEXT
        else:
            payload, first = bytes(frame), _FIN | _BINARY
        size = len(payload)
        if size < 126:
            parts.append(struct.pack("!BB", first, size))
        elif size < 0x10000:
            parts.append(struct.pack("!BBH", first, 126, size))
        else:
            parts.append(struct.pack("!BBQ", first, 127, size))
        parts.append(payload)
    return b"".join(parts)
