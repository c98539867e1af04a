"""Building a session's document: what happens when the app's code fails halfway.

As under bokeh serve, the session keeps what the app built before it failed, and the page,
autoload.js and a bokeh.client pull all get that document; the error and its traceback go to the
log, once, and never to the client.
"""
from __future__ import annotations

import logging

from bokeh.application import Application
from bokeh.document import Document
from bokeh.settings import settings as bokeh_settings

from . import conf
from ._compat.validation import validate_document

logger = logging.getLogger(__name__)

__all__ = ("build_document",)

_FAILED = "App %s failed to build the document of session %s; it keeps what was built"


def build_document(application: Application, doc: Document, url: str | None, session_id: str) -> None:
    """Run every handler of ``application`` on ``doc``; a failing one is logged once, with its traceback.

    bokeh's own ``Application.initialize_document`` would log a script's failure, and the caller
    a second time. An ``Application`` subclass that does more around the handlers (Panel's) builds
    with its own ``initialize_document``: bokeh logs a failed handler there, and only what it
    raises is logged here.
    """
    if type(application).initialize_document is not Application.initialize_document:
        try:
            application.initialize_document(doc)
        except Exception:
            logger.exception(_FAILED, url, session_id)
        return
    for handler in application.handlers:
        try:
            handler.modify_document(doc)
        except Exception:  # a modify_doc (FunctionHandler) raises; scripts and notebooks set ``failed``
            logger.exception(_FAILED, url, session_id)
            continue
        if handler.failed:
            logger.error(_FAILED + "\n%s", url, session_id, (handler.error_detail or handler.error or "").rstrip())
    if bokeh_settings.perform_document_validation():
        if conf.get("SPEED_SHORTCUTS"):
            validate_document(doc)
        else:
            doc.validate()
