"""Twisted's buffers: bytes a transport still holds for its peer, and requests a client sent ahead."""
from __future__ import annotations

from typing import Any

from .versions import proven

__all__ = ("has_pipelined_data", "refused_bytes", "unsent_bytes")

# FileDescriptor keeps unsent data in dataBuffer[offset:] plus _tempDataBuffer (_tempDataLen bytes)


def unsent_bytes(transport: Any) -> int | None:
    """Bytes written to ``transport`` and not yet taken by the kernel, or None where unknown."""
    if not proven("twisted write buffer"):
        return None
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except (AttributeError, TypeError):
        return None


def refused_bytes(transport: Any) -> int | None:
    """Bytes the kernel would not take at ``transport``'s last write attempt (its socket is full), or None.

    Unlike ``unsent_bytes`` this leaves out what was written since then and waits only for the loop
    to get round to writing it: a busy loop is not a slow reader.
    """
    if not proven("twisted write buffer"):
        return None
    try:
        return len(transport.dataBuffer) - transport.offset
    except (AttributeError, TypeError):
        return None


# HTTPChannel (a LineReceiver) keeps bytes it has not parsed yet in _buffer while it parses a request,
# and bytes that came while a request is being answered in _dataBuffer (a list)


def has_pipelined_data(channel: Any) -> bool | None:
    """Whether ``channel`` holds bytes a client sent behind the request being handled, or None where unknown."""
    if not proven("twisted http pipelining"):
        return None
    try:
        return bool(channel._buffer) or any(channel._dataBuffer)
    except (AttributeError, TypeError):
        return None
