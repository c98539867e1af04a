"""Ending a session on purpose (logout, the admin): the page is told why, and the id opens nothing again.

An expired unused session may be rebuilt from its token (the page reconnects to a fresh
session, as under bokeh serve); an ended one may not, or logging out and the admin's "end"
would only reset the page.
"""
from __future__ import annotations

from collections import OrderedDict

from bokeh.document import Document
from bokeh.models import Div

__all__ = ("ENDED_CLOSE_CODE", "EndedSessions", "close_reason", "show_notice")

# The websocket close code of an ended (or expired) session.
ENDED_CLOSE_CODE = 4010
NOTICE_NAME = "bokehserver-session-ended"


class EndedSessions:
    """The ids of recently ended sessions and why, forgetting the oldest past ``limit``."""

    def __init__(self, limit: int = 10_000) -> None:
        self._reasons: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def add(self, session_id: str, reason: str) -> None:
        self._reasons[session_id] = reason
        self._reasons.move_to_end(session_id)
        while len(self._reasons) > self._limit:
            self._reasons.popitem(last=False)

    def reason(self, session_id: str) -> str | None:
        return self._reasons.get(session_id)


def close_reason(reason: str) -> str:
    """The close frame's reason (at most 123 bytes on the wire)."""
    text = f"session ended: {reason}"
    return text.encode("utf-8")[:120].decode("utf-8", "ignore")


def show_notice(doc: Document, reason: str) -> None:
    """Add a banner saying why the session ended: BokehJS draws a new root at once, so the page shows it."""
    if doc.select_one({"name": NOTICE_NAME}) is not None:
        return
    doc.add_root(Div(
        name=NOTICE_NAME,
        text=f"This session has ended: {reason}. Reload the page to start a new one.",
        styles={"position": "fixed", "bottom": "0", "left": "0", "right": "0", "z-index": "10000",
                "padding": "10px 16px", "background": "#fff4e5", "color": "#5f3700",
                "border-top": "1px solid #f0b44c", "font": "14px sans-serif"},
    ))
