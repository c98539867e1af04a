"""``curdoc()`` bound to a session's document per asyncio task and per thread.

bokeh before 3.10 keeps one process-wide list of patched documents: sessions whose callbacks
interleave on the loop or run in threads would see each other's documents, and an exception
leaves an entry behind. There the list is replaced by a stack kept in a context variable. bokeh
3.10 keeps its own stack in a context variable, exception-safe, and is used as it is.
"""
from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import bokeh.io.doc as _io_doc
from bokeh.document import Document
from bokeh.document.locking import UnlockedDocumentProxy

from .versions import proven

__all__ = ("bind_curdoc", "install_curdoc_binding", "unlocked_proxy")


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
