"""Live sessions per user and per client address in one process, against their limits."""
from __future__ import annotations

import logging
from collections import Counter

from . import conf

logger = logging.getLogger(__name__)

__all__ = ("LimitReached", "SessionQuotas")


class LimitReached(Exception):
    """A configured limit refuses the request (a session, a connection, a handshake); the text says which."""


class SessionQuotas:
    """Counts the sessions each user and each client address holds, shared by every app of a server.

    A session is counted from the moment it starts being built (so a burst of page requests cannot
    all slip past the limit while their documents are made) until it is destroyed.
    """

    def __init__(self) -> None:
        self._holders: dict[str, tuple[str | None, str | None]] = {}
        self._users: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()

    def take(self, session_id: str, owner: str | None, address: str | None) -> None:
        """Count a new session of ``owner`` (a user id, None for anonymous) from ``address``.

        Raises:
            LimitReached: the user or the address holds MAX_SESSIONS_PER_USER/_ADDRESS already.
        """
        if session_id in self._holders:
            return
        user_limit = conf.get("MAX_SESSIONS_PER_USER")
        if owner is not None and user_limit is not None and self._users[owner] >= user_limit:
            raise LimitReached(f"user {owner} already has {user_limit} sessions (MAX_SESSIONS_PER_USER)")
        address_limit = conf.get("MAX_SESSIONS_PER_ADDRESS")
        if address and address_limit is not None and self._addresses[address] >= address_limit:
            raise LimitReached(f"{address} already has {address_limit} sessions (MAX_SESSIONS_PER_ADDRESS)")
        self._holders[session_id] = (owner, address)
        if owner is not None:
            self._users[owner] += 1
        if address:
            self._addresses[address] += 1

    def release(self, session_id: str) -> None:
        """Stop counting a session (destroyed, or never built); unknown ids are ignored."""
        holder = self._holders.pop(session_id, None)
        if holder is None:
            return
        owner, address = holder
        for counter, key in ((self._users, owner), (self._addresses, address)):
            if key:
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    def held_by_user(self, owner: str) -> int:
        return self._users[owner]

    def held_by_address(self, address: str) -> int:
        return self._addresses[address]
