"""``curdoc()`` bound to a session's document per asyncio task and per thread.

bokeh before 3.10 keeps one process-wide list of patched documents: sessions whose callbacks
interleave on the loop or run in threads would see each other's documents, and an exception
leaves an entry behind. There the list is replaced by a stack kept in a context variable. bokeh
3.10 keeps its own stack in a context variable, exception-safe, and is used as it is.

bokeh binds ``curdoc()`` again around every callback and event it dispatches (five times per
slider round trip, each a context manager and a weak reference), although the server has bound
it to the session's document already: ``SHORTCUTS`` skips binding what is bound.
"""
from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import bokeh.document.callbacks as _callbacks
import bokeh.io.doc as _io_doc
import bokeh.protocol.messages.patch_doc as _patch_doc
from bokeh.document import Document
from bokeh.document.locking import UnlockedDocumentProxy

from .versions import proven

__all__ = ("SHORTCUTS", "bind_curdoc", "install_curdoc_binding", "unlocked_proxy")


class _CurdocStack:
    """bokeh's list of patched ``curdoc()`` documents (append, pop, index, len), kept in a context variable."""

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


_upstream_patch_curdoc = _io_doc.patch_curdoc
_decided = False


def install_curdoc_binding() -> None:
    """Make bokeh's ``curdoc()`` patching task- and thread-local and exception-safe where it is not (idempotent)."""
    global _decided
    if _decided:
        return
    _decided = True
    if isinstance(_io_doc._PATCHED_CURDOCS, list) and proven("curdoc stack"):
        _io_doc._PATCHED_CURDOCS = _CurdocStack()
        _io_doc.patch_curdoc = bind_curdoc  # bokeh's callbacks import it when they run


@contextmanager
def bind_curdoc(doc: Any) -> Iterator[None]:
    """Make ``curdoc()`` return ``doc`` in this task or thread until the block ends."""
    install_curdoc_binding()
    stack = _io_doc._PATCHED_CURDOCS
    if not isinstance(stack, _CurdocStack):
        with _upstream_patch_curdoc(doc):
            yield
        return
    token = stack.var.set(stack.var.get() + (weakref.ref(doc),))
    try:
        yield
    finally:
        stack.var.reset(token)


def unlocked_proxy(doc: Document) -> Any:
    """What ``curdoc()`` is inside a ``without_document_lock`` callback."""
    return UnlockedDocumentProxy(doc)


_bokeh_invoke_with_curdoc = _callbacks.invoke_with_curdoc


def _bound_document() -> Any:
    """The document ``curdoc()`` is bound to in this task or thread (None if unbound or unknown)."""
    stack = _io_doc._PATCHED_CURDOCS
    if isinstance(stack, _CurdocStack):
        entries = stack.var.get()
    elif isinstance(stack, ContextVar):  # bokeh 3.10's own
        entries = stack.get()
    else:
        return None
    return entries[-1]() if entries else None


def _invoke_with_curdoc(doc: Any, f: Any) -> Any:
    if doc is not None and _bound_document() is doc and not getattr(f, "nolock", False):
        return f()
    return _bokeh_invoke_with_curdoc(doc, f)


SHORTCUTS = tuple(
    (module, "invoke_with_curdoc", _bokeh_invoke_with_curdoc, _invoke_with_curdoc)
    for module in (_callbacks, _patch_doc)
    if vars(module).get("invoke_with_curdoc") is _bokeh_invoke_with_curdoc
)
