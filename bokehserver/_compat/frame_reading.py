"""Whole incoming websocket frames read without autobahn's per-frame machinery.

A Bokeh message arrives as three or more small frames, usually in one read. autobahn walks each
through a dozen methods (frame header object, masker, per-frame and per-message hooks, UTF-8
validator, a fired "message" event): about a tenth of the server's CPU per slider round trip.
``read_frames`` takes the common case itself: the socket is open and autobahn holds no partial
frame or message; each frame is whole, final, unextended, masked, a text or binary frame within
autobahn's size limits, its text valid UTF-8. It unmasks it, counts it in autobahn's traffic
statistics, restarts the ping timeout as autobahn does on traffic, and hands it to the protocol's
``onMessage`` as autobahn would. At the first frame that is anything else (a control frame, a
fragment, a frame cut off at the end of the read, invalid UTF-8 or a violation to report) it
hands the rest of the read to autobahn, which then does what it always does.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.xormasker import create_xor_masker

__all__ = ("SMALL_FRAME_BYTES", "read_frames", "unmask")

_OPEN = WebSocketProtocol.STATE_OPEN
_TEXT, _BINARY = 0x81, 0x82  # FIN set, no RSV bits, opcode 1 or 2
# up to this size one XOR of two big integers beats autobahn's native masker (set-up ~10 us); past
# a few KiB the native one wins (8 KiB: 29 against 6 us; 64 KiB: 180 against 22 us)
SMALL_FRAME_BYTES = 1024


def unmask(data: bytes, mask: bytes) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated (RFC 6455 5.3), as one XOR of two big integers."""
    size = len(data)
    key = (mask * ((size >> 2) + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def _takes_plain_frames(protocol: Any) -> bool:
    return (protocol.state == _OPEN and not protocol.data and protocol.current_frame is None
            and not protocol.inside_message and protocol._perMessageCompress is None
            and not protocol.logOctets and not protocol.logFrames and not protocol.trackedTimings
            and protocol.applyMask)


def read_frames(protocol: Any, data: bytes, read_rest: Callable[[Any, bytes], None]) -> None:
    """Hand ``data``'s leading plain frames to ``protocol.onMessage``, and the rest to ``read_rest`` (autobahn)."""
    if not _takes_plain_frames(protocol):
        read_rest(protocol, data)
        return
    size, position = len(data), 0
    while size - position >= 6:
        first, second = data[position], data[position + 1]
        if (first != _TEXT and first != _BINARY) or second < 0x80:  # a control frame, fragment, extension or no mask
            break
        length, head = second & 0x7F, position + 2
        if length == 126:
            length = int.from_bytes(data[head:head + 2], "big")
            head += 2
            if length < 126:  # not the shortest encoding: autobahn reports the violation
                break
        elif length == 127:  # 64 KiB or more: rare, and likely to span reads; autobahn's
            break
        start = head + 4
        end = start + length
        if end > size or 0 < protocol.maxFramePayloadSize < length or 0 < protocol.maxMessagePayloadSize < length:
            break
        payload, mask = data[start:end], data[head:start]
        payload = unmask(payload, mask) if length <= SMALL_FRAME_BYTES else create_xor_masker(mask, length).process(payload)
        if first == _TEXT and protocol.utf8validateIncoming:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                break  # autobahn fails the connection with its own close code and reason
        stats = protocol.trafficStats
        stats.incomingOctetsWireLevel += end - position
        stats.incomingOctetsWebSocketLevel += length
        stats.incomingOctetsAppLevel += length
        stats.incomingWebSocketFrames += 1
        stats.incomingWebSocketMessages += 1
        if protocol.autoPingTimeoutCall and protocol.autoPingRestartOnAnyTraffic:
            protocol._cancelAutoPingTimeoutCall()
        position = end
        protocol.onMessage(payload, first == _BINARY)
        if protocol.state != _OPEN:  # closed meanwhile (the rest of autobahn's state changes only as it reads)
            break
    if position < size:
        if protocol.state != _OPEN:  # autobahn counts a read's octets on arrival, while the socket was open
            protocol.trafficStats.incomingOctetsWireLevel += size - position
        read_rest(protocol, data[position:] if position else data)
