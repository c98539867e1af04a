"""Panel's ``pn.state.onload`` callbacks, run when the browser's document is ready, as ``panel serve`` does.

Panel queues ``onload`` callbacks per document and runs them from its own ``Application``, which
``panel serve`` uses and ``bokeh serve`` does not (there they never run). A session whose app
imported Panel gets the same connection here: Panel's private ``state._schedule_on_load`` on
the document's ``document_ready`` event. Panel is never imported by bokehserver: an app that
did not import it is left alone. Outside the Panel versions this was proven on, nothing is
connected (``onload`` then behaves as under ``bokeh serve``).
"""
from __future__ import annotations

import sys
from functools import partial
from typing import Any

from bokeh.document import Document

from .versions import proven

__all__ = ("connect_panel_onload",)


def connect_panel_onload(doc: Document, application: Any) -> None:
    """After an app built ``doc``: run its Panel ``onload`` callbacks once the page says it is ready."""
    if "panel" not in sys.modules:
        return
    state = getattr(sys.modules.get("panel.io.state"), "state", None)
    schedule = getattr(state, "_schedule_on_load", None)
    if schedule is None or not proven("panel onload"):
        return
    panel_application = getattr(sys.modules.get("panel.io.application"), "Application", None)
    if panel_application is not None and isinstance(application, panel_application):
        return  # Panel's own Application connects it
    doc.on_event("document_ready", partial(schedule, doc))
