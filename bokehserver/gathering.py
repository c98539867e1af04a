"""One event per incoming Bokeh message instead of one per websocket frame.

A Bokeh message is a header, a metadata and a content frame, then a pair of frames per buffer.
Handed to the consumer frame by frame, each frame costs the loop a queue put, a task wake-up, a
dispatch and a step of bokeh's ``Receiver``. The daphne server holds a message's header and
metadata until its content arrives and hands the three over as one ``RECEIVE_FRAMES`` event.

Only the plain case is gathered: text frames, a header that is a JSON object without buffers.
Anything else (buffers, a binary frame where text belongs, a header that is not one bokeh can
read, a header and metadata over the message size limit) goes through frame by frame, as it
did before, so the consumer judges it exactly as it always has.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from .frames import Frames

__all__ = ("RECEIVE_FRAMES", "FrameGatherer")

# ASGI event of bokehserver's daphne server: {"type": RECEIVE_FRAMES, "frames": (header, metadata, content)}
RECEIVE_FRAMES = "bokehserver.websocket.receive_frames"

# a header bigger than this is not parsed here (a real one is ~100 bytes)
HEADER_PARSE_LIMIT = 16 * 1024
_FOREVER = -1


def buffer_count(header: bytes) -> int | None:
    """How many buffers a header frame announces, or None when it is not a header to gather on."""
    if len(header) > HEADER_PARSE_LIMIT:
        return None
    try:
        parsed = json.loads(header)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    count = parsed.get("num_buffers", 0)
    if type(count) is not int or count < 0:
        return None
    return count


class FrameGatherer:
    """Turns one socket's incoming frames into whole messages (``on_message``) or single frames (``on_frame``).

    ``on_frame(payload, is_binary)`` receives a frame as the websocket library gave it;
    ``on_message(frames)`` the three decoded text frames of a message without buffers. Once a
    frame is out of the expected shape, every later frame of the socket goes to ``on_frame``:
    the consumer refuses such a message and closes the socket anyway.
    """

    __slots__ = ("_held", "_held_bytes", "_limit", "_on_frame", "_on_message", "_passing")

    def __init__(self, limit: int, on_frame: Callable[[bytes, bool], None], on_message: Callable[[Frames], None]) -> None:
        self._limit = limit
        self._on_frame = on_frame
        self._on_message = on_message
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._passing = 0  # frames still to pass on one by one (_FOREVER: all of them)

    def feed(self, payload: bytes, is_binary: bool) -> None:
        """Take the next frame of the socket (a text frame's payload is UTF-8 the library validated)."""
        if self._passing:
            if self._passing > 0:
                self._passing -= 1
            self._on_frame(payload, is_binary)
            return
        held = self._held
        if is_binary:
            self._give_up(payload, is_binary)
            return
        if not held:
            count = buffer_count(payload)
            if count != 0:
                # a message with buffers goes frame by frame (3 + 2 per buffer); a bad header for good
                self._passing = _FOREVER if count is None else 2 + 2 * count
                self._on_frame(payload, is_binary)
                return
        elif len(held) == 2:
            self._held, self._held_bytes = [], 0
            self._on_message((held[0].decode("utf-8"), held[1].decode("utf-8"), payload.decode("utf-8")))
            return
        self._held_bytes += len(payload)
        if self._held_bytes > self._limit:
            self._give_up(payload, is_binary)
            return
        held.append(payload)

    def _give_up(self, payload: bytes, is_binary: bool) -> None:
        """Pass on what is held and this frame, and every later frame, one by one."""
        held, self._held, self._held_bytes = self._held, [], 0
        self._passing = _FOREVER
        for frame in held:
            self._on_frame(frame, False)
        self._on_frame(payload, is_binary)
