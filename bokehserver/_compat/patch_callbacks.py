"""Whether applying a client's PATCH-DOC can run app code, read from bokeh's callback registries.

Most of what a browser sends sets properties no Python code listens to: a pan or a zoom moves a
range's ``start`` and ``end`` up to once a frame, a resize sets a plot's inner size. Such a patch
runs no app code, so the session applies it on the event loop instead of waking its app-code
thread for it (the hop costs more than the patch). bokeh keeps a model's ``on_change`` callbacks
in ``HasProps._callbacks`` and the document's in ``DocumentCallbackManager._change_callbacks``,
where the session itself is a receiver. Only ``ModelChanged`` events of bokeh's own model classes
with plain values (numbers, strings, short flat lists of them) qualify; anything else, and every patch
on a bokeh these registries were not proven on, is taken to run app code.
"""
from __future__ import annotations

from typing import Any

from .versions import proven

__all__ = ("runs_app_code",)

_PLAIN = (type(None), bool, int, float, str)
_LONGEST_LIST = 256  # a longer value is validated off the loop, where it holds up one session only


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    return isinstance(value, list) and len(value) <= _LONGEST_LIST and all(isinstance(item, _PLAIN) for item in value)


def runs_app_code(document: Any, content: Any, receiver: Any) -> bool:
    """False only when applying ``content`` (a PATCH-DOC's) to ``document`` surely calls no callback
    but ``receiver``'s (the session's own dispatch of document changes)."""
    if not proven("patch listeners"):
        return True
    change_callbacks = getattr(document.callbacks, "_change_callbacks", None)
    if type(change_callbacks) is not dict or any(key is not receiver for key in change_callbacks):
        return True
    events = content.get("events") if isinstance(content, dict) else None
    if not isinstance(events, list) or not events:
        return True
    get_model = document.models.get_by_id
    for event in events:
        if not isinstance(event, dict) or event.get("kind") != "ModelChanged" or not _plain(event.get("new")):
            return True
        reference = event.get("model")
        model = get_model(reference.get("id")) if isinstance(reference, dict) else None
        if model is None or not type(model).__module__.startswith("bokeh."):
            return True  # a model unknown here (bokeh reports it) or an app's own class
        callbacks = getattr(model, "_callbacks", None)
        if type(callbacks) is not dict or any(callbacks.values()):
            return True
    return False
