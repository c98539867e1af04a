"""Every touch of a bokeh private name lives here, so a bokeh upgrade is one file to read."""
from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import PropertyDescriptor
from bokeh.core.property.singletons import Undefined
from bokeh.core.property.wrappers import PropertyValueContainer
from bokeh.document import Document
import bokeh.io.doc as _io_doc
from bokeh.document.locking import UnlockedDocumentProxy

logger = logging.getLogger(__name__)

__all__ = (
    "SessionDestroyedHandler",
    "bind_curdoc",
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


_SerialPlan = tuple[tuple[str, PropertyDescriptor, bool], ...]
_plans: dict[type, _SerialPlan] = {}
_bokeh_properties_with_values = HasProps.properties_with_values


def _serial_plan(cls: type[HasProps]) -> _SerialPlan:
    """Each serialized property of ``cls`` in bokeh's order, and whether reading its default can matter.

    Reading a default matters when it is unstable (bokeh stores the made value on the object, so
    later serializations see it) or missing (bokeh raises); other defaults are pure.
    """
    plan = _plans.get(cls)
    if plan is None:
        probe_overrides = cls._overridden_defaults()
        entries = []
        for name in cls.properties(_with_props=True):
            descriptor = cls.lookup(name)
            if not descriptor.serialized:
                continue
            prop = descriptor.property
            default = probe_overrides.get(name, prop._default)
            # bokeh's own test reads only the class's __overridden_defaults__, so the class serves as the model
            matters = (
                _bokeh_has_unstable_default(descriptor, cls)
                or descriptor.is_unstable(default)
                or default is Undefined
            )
            entries.append((name, descriptor, matters))
        plan = _plans[cls] = tuple(entries)
    return plan


def _properties_with_values(self: HasProps, *, include_defaults: bool = True, include_undefined: bool = False) -> dict[str, Any]:
    """``HasProps.properties_with_values`` that skips computing defaults nobody will serialize.

    bokeh's version computes every property's default (theme lookups, validation) and then drops
    the ones not set: nine tenths of a document's serialization time. Same result, same side
    effects (unstable defaults are still made and stored), same errors.
    """
    if include_defaults or include_undefined:
        return _bokeh_properties_with_values(self, include_defaults=include_defaults, include_undefined=include_undefined)
    unstable = self._unstable_default_values
    themed_values = self.themed_values()
    themed_keys = set(themed_values) if themed_values is not None else set()
    selected = self._property_values.keys() | unstable.keys() | themed_keys
    result: dict[str, Any] = {}
    for name, descriptor, matters in _serial_plan(type(self)):
        if name not in selected:
            if matters:
                descriptor.get_value(self)
            continue
        value = descriptor.get_value(self)
        if name not in themed_keys and isinstance(value, PropertyValueContainer) and name in unstable:
            continue
        result[name] = value
    return result


_overrides_by_class: dict[type, Mapping[str, Any]] = {}
_bokeh_overridden_defaults = HasProps._overridden_defaults.__func__  # type: ignore[attr-defined]
_unstable_by_class: dict[tuple[PropertyDescriptor, type], bool] = {}
_bokeh_has_unstable_default = PropertyDescriptor.has_unstable_default


def _overridden_defaults(cls: type[HasProps]) -> Mapping[str, Any]:
    """bokeh's merge of the default overrides along the class's MRO, made once per class.

    bokeh merges them again at every read of a default (a quarter of building a document is
    reading defaults); the classes do not change once made. Read-only, as bokeh's one caller uses it.
    """
    found = _overrides_by_class.get(cls)
    if found is None:
        found = _overrides_by_class[cls] = MappingProxyType(_bokeh_overridden_defaults(cls))
    return found


def _has_unstable_default(self: PropertyDescriptor, obj: HasProps) -> bool:
    """bokeh's answer (a walk over the property's type parameters), once per property and class.

    ``HasProps.__init__`` asks it for every unset property of every new model.
    """
    key = (self, type(obj))
    found = _unstable_by_class.get(key)
    if found is None:
        found = _unstable_by_class[key] = _bokeh_has_unstable_default(self, obj)
    return found


_bokeh_themed_values = HasProps.themed_values


def _themed_values(self: HasProps) -> dict[str, Any] | None:
    """The theme's values for this model: bokeh's lookup goes through ``HasProps.__getattr__``
    and a raised AttributeError for every unthemed model, at every default read."""
    return self.__dict__.get("__themed_values__")


_SHORTCUTS = (
    (HasProps, "properties_with_values", _bokeh_properties_with_values, _properties_with_values),
    (HasProps, "_overridden_defaults", classmethod(_bokeh_overridden_defaults), classmethod(_overridden_defaults)),
    (HasProps, "themed_values", _bokeh_themed_values, _themed_values),
    (PropertyDescriptor, "has_unstable_default", _bokeh_has_unstable_default, _has_unstable_default),
)


@contextmanager
def bokehs_own_models() -> Iterator[None]:
    """bokeh's own versions of the shortcuts for the block: what the tests and benchmarks compare with."""
    installed = [(owner, name, owner.__dict__[name]) for owner, name, _, _ in _SHORTCUTS]
    for owner, name, original, _ in _SHORTCUTS:
        setattr(owner, name, original)
    try:
        yield
    finally:
        for owner, name, current in installed:
            setattr(owner, name, current)


def install_fast_models() -> None:
    """Build and serialize models with the per-class shortcuts above: same results (idempotent)."""
    for owner, name, _, shortcut in _SHORTCUTS:
        setattr(owner, name, shortcut)
