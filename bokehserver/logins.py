"""Sessions tied to a Django login end with it: logout, an expired login, a deactivated user.

A logged-in user's session remembers the Django session key its page came with. Logging out
ends its sessions at once (``signals.end_sessions_of_logout``); a periodic check catches the
rest: a login that expired, was logged out in another process, or whose user was deactivated.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from .access import login_digest
from .records import Ended

if TYPE_CHECKING:
    from .application_context import ApplicationContext

logger = logging.getLogger(__name__)

__all__ = ("check_logins", "end_login_sessions", "stale_logins")

LOGGED_OUT = "logged out"


async def end_login_sessions(contexts: Iterable[ApplicationContext], digest: str, reason: str) -> int:
    """End every session of ``contexts`` whose Django login key has this ``login_digest``."""
    ended = 0
    for context in list(contexts):
        for session in context.sessions:
            if session.login_key and login_digest(session.login_key) == digest:
                ended += await context.end_session(session, reason, Ended.LOGOUT)
    return ended


async def check_logins(contexts: Iterable[ApplicationContext]) -> int:
    """End the sessions whose login is no longer valid; returns how many ended."""
    contexts = list(contexts)
    owners = {s.login_key: s.owner for c in contexts for s in c.sessions if s.login_key and s.owner}
    if not owners:
        return 0
    stale = await sync_to_async(stale_logins, thread_sensitive=False)(owners)
    ended = 0
    for context in contexts:
        for session in context.sessions:
            reason = stale.get(session.login_key or "")
            if reason is not None:
                status = Ended.LOGOUT if reason == LOGGED_OUT else Ended.LOGIN
                ended += await context.end_session(session, reason, status)
    return ended


def stale_logins(owners: dict[str, str]) -> dict[str, str]:
    """Of ``{login key: owner id}``, the logins that no longer log that user in, and why."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import SESSION_KEY, get_user
    from django.db import close_old_connections

    engine = import_module(settings.SESSION_ENGINE)
    stale: dict[str, str] = {}
    close_old_connections()
    try:
        for login_key, owner in owners.items():
            store = engine.SessionStore(login_key)
            if str(store.get(SESSION_KEY)) != owner:
                stale[login_key] = LOGGED_OUT
                continue

            class _Request:
                session = store

            user: Any = get_user(_Request())  # type: ignore[arg-type]
            if str(getattr(user, "pk", None)) != owner:
                stale[login_key] = "login no longer valid"
    finally:
        close_old_connections()
    return stale
