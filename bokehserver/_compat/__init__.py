"""Every touch of a private name of bokeh, daphne, autobahn, Twisted or Panel lives in this package.

Each replacement of a dependency's internals checks the versions it was proven on
(``versions.PROVEN``) and keeps the dependency's own behaviour elsewhere. Sessions' documents,
session contexts and lifecycle hooks are here; ``curdoc`` binds ``curdoc()``, ``fast_models``
builds models faster, ``daphne`` and ``reactor`` hold what the daphne server changes, and what an
application tells plain daphne about its sockets (limits, close reasons); ``extensions`` reads
bokeh's registry of extension folders and ``panel`` runs Panel's ``onload`` callbacks.
"""
from __future__ import annotations

import logging
import sys
import weakref
from typing import Any

from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.document import Document

from .curdoc import bind_curdoc, install_curdoc_binding, unlocked_proxy
from .fast_models import bokehs_own_models, install_fast_models
from .panel import connect_panel_onload
from .patch_callbacks import runs_app_code
from .versions import proven

logger = logging.getLogger(__name__)

__all__ = (
    "SessionDestroyedHandler",
    "bind_curdoc",
    "complete_session_context",
    "connect_panel_onload",
    "bokehs_own_models",
    "install_curdoc_binding",
    "install_fast_models",
    "unlocked_proxy",
    "destroy_document",
    "release_models",
    "runs_app_code",
    "forget_received",
    "mark_logged",
    "hook_function",
    "set_session_context",
)


def set_session_context(doc: Document, context: Any) -> None:
    """Expose ``context`` as ``doc.session_context`` (bokeh keeps a weak reference)."""
    doc._session_context = weakref.ref(context)


def destroy_document(doc: Document, receiver: Any) -> list[Any]:
    """Release a session's document, as ``Document.destroy`` does but without its whole-heap scans.

    bokeh runs ``gc.collect()`` and a ``gc.get_referrers`` leak check per destroyed document,
    which stall the event loop for seconds when many sessions expire together. Returns the
    document's models (its config's too), for ``release_models`` once nothing uses them.
    """
    if not proven("document release"):
        doc.destroy(receiver)
        return []
    config = getattr(doc, "config", None)  # bokeh 3.7 added the document's config (its notifications)
    models = [*doc.models, *(config.references() if config is not None else ())]
    doc.remove_on_change(receiver)
    doc._roots = []
    doc._theme = None
    doc._template = None
    doc._session_context = None
    doc.callbacks.destroy()
    doc.models.destroy()
    _destroy_modules(doc)
    return models


def release_models(models: list[Any]) -> None:
    """Break the reference cycles of a destroyed document's models, so reference counting frees them.

    A model and each container value it holds point at each other (the container's ``_owners``),
    and its callbacks usually close over it. Session documents are frozen out of the garbage
    collector (``heap.py``), which never looks at those cycles: emptying what each model holds
    leaves nothing for the collector to do.
    """
    for model in models:
        state = model.__dict__
        for name in ("_property_values", "_unstable_default_values", "_unstable_themed_values",
                     "_callbacks", "_event_callbacks"):
            held = state.get(name)
            if held is not None:
                held.clear()
        state["_document"] = state["_temp_document"] = None


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
    if not proven("lifecycle hooks"):
        return getattr(handler, name)
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


def complete_session_context(cls: type) -> type:
    """Make ``cls`` instantiable where a bokeh it was not proven on declares abstract members it lacks.

    Each missing member answers what bokeh's abstract one does (None); returns ``cls``.
    """
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if not missing or proven("session context"):
        return cls
    logger.warning("bokehserver's %s answers None for bokeh's new abstract members %s", cls.__name__, missing)
    for name in missing:
        member = getattr(cls, name)
        setattr(cls, name, property(lambda self: None) if isinstance(member, property) else (lambda self, *a, **k: None))
    cls.__abstractmethods__ = frozenset()
    return cls


def forget_received(receiver: Any) -> None:
    """Drop what bokeh's ``Receiver`` keeps of the message it just completed (its fragments and the
    message itself), which it would hold until the next message's header: for a 19 MB PATCH-DOC,
    its text and every decoded value, for as long as the client stays quiet."""
    if not proven("receiver release"):
        return
    try:
        receiver._fragments = []
        receiver._partial = None
        receiver._message = None
    except AttributeError:
        pass


def mark_logged(response: Any) -> Any:
    """Keep ``django.request`` from logging a refusal bokehserver has logged already (one warning).

    Django logs every 5xx response at ERROR, which also mails the site's ADMINS: a session limit
    reached is expected load, not a server error.
    """
    if proven("response logged"):
        response._has_been_logged = True
    return response
