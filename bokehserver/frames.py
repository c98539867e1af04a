"""A Bokeh message as the websocket frames that carry it: built once, sent to many sockets."""
from __future__ import annotations

import json
from typing import Any, Union

from bokeh.protocol.message import Message

__all__ = ("SEND_FRAMES", "Frames", "message_frames")

# ASGI extension offered by bokehserver's daphne server in a websocket scope's "extensions":
# {"type": SEND_FRAMES, "frames": [str | bytes, ...]} sends one whole message in one event.
SEND_FRAMES = "bokehserver.websocket.send_frames"

Frame = Union[str, bytes]
Frames = tuple[Frame, ...]


def message_frames(message: Message[Any]) -> Frames:
    """Return header, metadata and content text frames, then a (text, binary) pair per buffer."""
    frames: list[Frame] = [message.header_json, message.metadata_json, message.content_json]
    for buffer in message.buffers:
        frames.append(json.dumps(buffer.ref))
        frames.append(buffer.to_bytes())
    return tuple(frames)
