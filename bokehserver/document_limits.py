"""How many models a client may make a session's document hold (``MAX_DOCUMENT_MODELS``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import conf

if TYPE_CHECKING:
    from bokeh.document import Document
    from bokeh.protocol.message import Message

__all__ = ("DocumentTooBig", "check_document_size")


class DocumentTooBig(Exception):
    """A client's PUSH-DOC or PATCH-DOC would grow the document past MAX_DOCUMENT_MODELS."""


def _count_objects(node: Any, stop: int) -> int:
    """Model definitions (``{"type": "object", ...}``) in decoded message content, counting up to ``stop``."""
    count, pending = 0, [node]
    while pending and count < stop:
        item = pending.pop()
        if isinstance(item, dict):
            count += item.get("type") == "object"
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def check_document_size(document: Document, message: Message[Any], replaces: bool) -> None:
    """Refuse a PUSH-DOC (``replaces``) or PATCH-DOC that would make ``document`` hold more than MAX_DOCUMENT_MODELS."""
    limit = conf.get("MAX_DOCUMENT_MODELS")
    if limit is None:
        return
    size = _count_objects(message.content, limit + 1) + (0 if replaces else len(document.models))
    if size > limit:
        raise DocumentTooBig(f"{message.msgtype} would make a document of more than {limit} models (MAX_DOCUMENT_MODELS)")
