"""Every touch of a bokeh private name lives in this package, so a bokeh upgrade is one place to read.

Sessions, curdoc and lifecycle hooks are here; the model shortcuts are in ``fast_models``; what an
application tells plain daphne about its sockets (limits, close reasons) is in ``daphne``.
"""
from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.document import Document
import bokeh.io.doc as _io_doc
from bokeh.document.locking import UnlockedDocumentProxy

from .fast_models import bokehs_own_models, install_fast_models

logger = logging.getLogger(__name__)

__all__ = (
    "SessionDestroyedHandler",
    "bind_curdoc",
    "bokehs_own_models",
    "install_curdoc_binding",
    "install_fast_models",
    "unlocked_proxy",
    "destroy_document",
    "hook_function",
    "set_session_context",
)


class _CurdocStack:
    """bokeh's stack of patched ``curdoc()`` documents, kept per asyncio task and per thread.

    bokeh keeps one process-global list, so sessions whose callbacks interleave on the loop or
    run in threads would see each other's documents, and an exception leaves an entry behind.
    """

    def __init__(self) -> None:
        self.var: ContextVar[tuple[Any, ...]] = ContextVar("bokehserver_curdoc", default=())

    def append(self, ref: Any) -> None:
        self.var.set(self.var.get() + (ref,))

    def pop(self) -> Any:
        stack = self.var.get()
        self.var.set(stack[:-1])
        return stack[-1]

    def __len__(self) -> int:
        return len(self.var.get())

    def __getitem__(self, index: int) -> Any:
        return self.var.get()[index]


def install_curdoc_binding() -> None:
    """Make bokeh's ``curdoc()`` patching task- and thread-local and exception-safe (idempotent)."""
    if not isinstance(_io_doc._PATCHED_CURDOCS, _CurdocStack):
        _io_doc._PATCHED_CURDOCS = _CurdocStack()
        _io_doc.patch_curdoc = bind_curdoc


@contextmanager
def bind_curdoc(doc: Any) -> Iterator[None]:
    """Make ``curdoc()`` return ``doc`` in this task or thread until the block ends."""
    install_curdoc_binding()
    stack: _CurdocStack = _io_doc._PATCHED_CURDOCS
    token = stack.var.set(stack.var.get() + (weakref.ref(doc),))
    try:
        yield
    finally:
        stack.var.reset(token)


def unlocked_proxy(doc: Document) -> Any:
    """What ``curdoc()`` is inside a ``without_document_lock`` callback."""
    return UnlockedDocumentProxy(doc)


def set_session_context(doc: Document, context: Any) -> None:
    """Expose ``context`` as ``doc.session_context`` (bokeh keeps a weak reference)."""
    doc._session_context = weakref.ref(context)


def destroy_document(doc: Document, receiver: Any) -> None:
    """Release a session's document, as ``Document.destroy`` does but without its whole-heap scans.

    bokeh runs ``gc.collect()`` and a ``gc.get_referrers`` leak check per destroyed document,
    which stall the event loop for seconds when many sessions expire together; the cycles are
    left to the regular collector.
    """
    doc.remove_on_change(receiver)
    doc._roots = []
    doc._theme = None
    doc._template = None
    doc._session_context = None
    doc.callbacks.destroy()
    doc.models.destroy()
    _destroy_modules(doc)


def _destroy_modules(doc: Document) -> None:
    """Drop the per-session modules a script app made (bokeh also scans every object for leaks: slow)."""
    modules = doc.modules._modules
    for module in modules:
        sys.modules.pop(module.__name__, None)
        module.__dict__.clear()
    modules.clear()


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


def hook_function(handler: Any, name: str) -> Any:
    """The function a handler's lifecycle hook ``name`` really calls, or the bound hook itself.

    bokeh's lifecycle handlers wrap user hooks in ``async def`` methods that call the user's
    function on the spot; the server wants the function itself, to run sync hooks off the loop
    and to await async ones (bokeh 3.9 returns those unawaited).
    """
    inner = getattr(handler, "_lifecycle_handler", None)  # DirectoryHandler delegates
    if inner is not None:
        handler = inner
    if isinstance(handler, LifecycleHandler):
        return getattr(handler, "_" + name)
    return getattr(handler, name)


class SessionDestroyedHandler(LifecycleHandler):
    """Runs the document's ``on_session_destroyed`` callbacks (bokeh's handler also forces a GC)."""

    def __init__(self) -> None:
        super().__init__()
        self._on_session_destroyed = _run_session_destroyed_callbacks
