"""Twisted's write buffer: how many bytes a transport still holds for a peer that has not read them."""
from __future__ import annotations

from typing import Any

from .versions import proven

__all__ = ("unsent_bytes",)

# FileDescriptor keeps unsent data in dataBuffer[offset:] plus _tempDataBuffer (_tempDataLen bytes)


def unsent_bytes(transport: Any) -> int | None:
    """Bytes written to ``transport`` and not yet taken by the kernel, or None where unknown."""
    if not proven("twisted write buffer"):
        return None
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except (AttributeError, TypeError):
        return None
