"""The document events a session receives: bokeh's own, re-exported under the server's names.

A ``ServerSession`` is registered on its document as the receiver: ``event.dispatch(session)``
calls ``session._document_patched`` for every change (which becomes one PATCH-DOC, serialized
once for all connections) and ``_session_callback_added``/``_removed`` for callbacks (which the
worker schedules or cancels).
"""
from __future__ import annotations

from bokeh.document.events import (
    ColumnsPatchedEvent,
    ColumnsStreamedEvent,
    DocumentChangedEvent,
    DocumentPatchedEvent,
    ModelChangedEvent,
    RootAddedEvent,
    RootRemovedEvent,
    SessionCallbackAdded,
    SessionCallbackRemoved,
    TitleChangedEvent,
)

__all__ = (
    "ColumnsPatchedEvent",
    "ColumnsStreamedEvent",
    "DocumentChangedEvent",
    "DocumentPatchedEvent",
    "ModelChangedEvent",
    "RootAddedEvent",
    "RootRemovedEvent",
    "SessionCallbackAdded",
    "SessionCallbackRemoved",
    "TitleChangedEvent",
)
