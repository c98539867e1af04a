"""Signals a site can connect to, and the receiver that ends a user's sessions when they log out.

Every signal is sent on the server's event loop with ``session`` (a ServerSession) and
``app_path``; the connection signals also with ``request`` (what ``session_context.request``
shows: headers, cookies, ``user`` when the app needs one). Receivers should be quick: they
run between websocket messages.
"""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.dispatch import Signal

logger = logging.getLogger(__name__)

__all__ = ("connection_closed", "connection_opened", "session_created", "session_destroyed")

session_created = Signal()
session_destroyed = Signal()
connection_opened = Signal()
connection_closed = Signal()


def send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal``; a receiver's exception is logged, never raised into the server."""
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            logger.error("Receiver %r of a bokehserver signal failed", receiver, exc_info=result)


def end_sessions_of_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: the pages of that login show why their sessions ended."""
    from . import registry
    from .control import end_login_sessions

    session = getattr(request, "session", None)
    login_key = getattr(session, "session_key", None)
    if not login_key:
        return
    try:
        async_to_sync(end_login_sessions)(login_key, "logged out", registry.installed_web_application())
    except Exception:
        logger.exception("Could not end the Bokeh sessions of a login that logged out")
