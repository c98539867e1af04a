"""Turning a socket's fragments into Bokeh messages without holding the event loop for big ones.

A 19 MB PATCH-DOC takes ``json.loads`` most of a second, all of it inside C code that never lets
another thread run: on the loop, every other session waits that long. Fragments past
``OFF_LOOP_BYTES`` are consumed on a worker thread, and their JSON decoded by a decoder whose
number and object hooks are Python functions, so the interpreter hands the loop its turn every
few milliseconds while a big message is parsed. Applying the message to the document is not done
here: that stays under the session's lock, as every document change does.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from bokeh.protocol import Protocol
from bokeh.protocol.exceptions import MessageError, ValidationError
from bokeh.protocol.message import Message
from bokeh.protocol.receiver import Receiver

__all__ = ("OFF_LOOP_BYTES", "YieldingProtocol", "assemble", "consume", "fragment_size")

# fragments at least this big are consumed on a worker thread (a slider move is ~200 bytes)
OFF_LOOP_BYTES = 256 * 1024


def _float(text: str) -> float:
    return float(text)


def _int(text: str) -> int:
    return int(text)


def _object(pairs: dict[str, Any]) -> dict[str, Any]:
    return pairs


# Python-level hooks: each call passes through the interpreter, which lets a waiting thread in
_YIELDING_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, object_hook=_object)


class YieldingProtocol(Protocol):
    """bokeh's protocol, decoding big message contents so that other threads keep running meanwhile."""

    def assemble(self, header_json: str, metadata_json: str, content_json: str) -> Message[Any]:
        if len(content_json) < OFF_LOOP_BYTES:
            return super().assemble(header_json, metadata_json, content_json)
        message = super().assemble(header_json, metadata_json, "{}")  # header and metadata checked as bokeh does
        try:
            message.content = _YIELDING_DECODER.decode(content_json)
        except ValueError:
            raise MessageError("content could not be decoded") from None
        return message


def fragment_size(fragment: str | bytes) -> int:
    """Bytes of a fragment on the wire, without copying an ASCII text (JSON mostly is)."""
    if isinstance(fragment, bytes) or fragment.isascii():
        return len(fragment)
    return len(fragment.encode("utf-8"))


def _consume_now(receiver: Receiver, fragment: str | bytes) -> Message[Any] | None:
    return asyncio.run(receiver.consume(fragment))


async def consume(receiver: Receiver, fragment: str | bytes, size: int) -> Message[Any] | None:
    """Feed one fragment to ``receiver``; return the message it completes, if any.

    Big fragments go to a worker thread; the caller awaits, so one socket's fragments stay in order.
    """
    if size < OFF_LOOP_BYTES:
        return await receiver.consume(fragment)
    return await asyncio.to_thread(_consume_now, receiver, fragment)


async def assemble(protocol: Protocol, frames: Sequence[str], size: int) -> Message[Any]:
    """The message of a whole header, metadata and content (no buffers), as bokeh's ``Receiver`` makes it.

    Big messages are assembled on a worker thread, as ``consume`` does with big fragments.

    Raises:
        ValidationError: the frames are not the three text frames of a message without buffers.
    """
    if len(frames) != 3 or not all(isinstance(frame, str) for frame in frames):
        raise ValidationError("expected the header, metadata and content text frames of a message")
    if size < OFF_LOOP_BYTES:
        message = protocol.assemble(*frames)
    else:
        message = await asyncio.to_thread(protocol.assemble, *frames)
    if not message.complete:
        raise ValidationError("a message with buffers came without them")
    return message
