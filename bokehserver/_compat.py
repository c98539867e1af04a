"""Every touch of a bokeh private name lives here, so a bokeh upgrade is one file to read."""
from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.document import Document
from bokeh.io.doc import patch_curdoc

logger = logging.getLogger(__name__)

__all__ = (
    "SessionDestroyedHandler",
    "bind_curdoc",
    "destroy_document",
    "set_session_context",
)


@contextmanager
def bind_curdoc(doc: Any) -> Iterator[None]:
    """Make ``curdoc()`` return ``doc`` while app code runs."""
    with patch_curdoc(doc):
        yield


def set_session_context(doc: Document, context: Any) -> None:
    """Expose ``context`` as ``doc.session_context`` (bokeh keeps a weak reference)."""
    doc._session_context = weakref.ref(context)


def destroy_document(doc: Document, receiver: Any) -> None:
    """Release a session's document, as ``Document.destroy`` does but without its ``gc.collect()``.

    bokeh collects garbage once per destroyed document, which stalls the event loop for
    seconds when many sessions expire together; the cycles are left to the regular collector.
    """
    doc.remove_on_change(receiver)
    doc._roots = []
    doc._theme = None
    doc._template = None
    doc._session_context = None
    doc.callbacks.destroy()
    doc.models.destroy()
    doc.modules.destroy()


def _run_session_destroyed_callbacks(session_context: Any) -> None:
    doc = session_context._document
    callbacks = doc.session_destroyed_callbacks
    doc.session_destroyed_callbacks = set()
    for callback in callbacks:
        try:
            callback(session_context)
        except Exception:
            logger.exception(
                "on_session_destroyed callback %r failed for session %s", callback, session_context.id
            )


class SessionDestroyedHandler(LifecycleHandler):
    """Runs the document's ``on_session_destroyed`` callbacks (bokeh's handler also forces a GC)."""

    def __init__(self) -> None:
        super().__init__()
        self._on_session_destroyed = _run_session_destroyed_callbacks
