"""Message and byte counters of a session and of the whole process: plain integer adds on the hot path.

Nothing here locks, allocates or touches the database: every counter lives on one event loop
and is only read by the record writer and the admin, which take a snapshot.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Union

__all__ = ("PROCESS", "Traffic", "frames_size")


class Traffic:
    """Counts Bokeh messages and payload bytes in and out, and when the last one passed."""

    __slots__ = ("bytes_in", "bytes_out", "last_activity", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.last_activity = time.time()

    def received(self, size: int) -> None:
        """One whole message of ``size`` payload bytes came from a browser."""
        self.messages_in += 1
        self.bytes_in += size
        self.last_activity = time.time()

    def sent(self, size: int) -> None:
        """One whole message of ``size`` payload bytes went to a browser."""
        self.messages_out += 1
        self.bytes_out += size
        self.last_activity = time.time()

    def touch(self) -> None:
        """Activity without a message (a connection opened or closed)."""
        self.last_activity = time.time()

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.messages_in, self.messages_out, self.bytes_in, self.bytes_out


def frames_size(frames: Iterable[Union[str, bytes]]) -> int:
    """A message's payload size: bytes of binary frames, characters of text frames (the same for ASCII JSON)."""
    return sum(len(frame) for frame in frames)


# Every message of this process (sessions that ended too): the dashboard's messages per second.
PROCESS = Traffic()
