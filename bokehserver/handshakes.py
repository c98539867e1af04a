"""A rate limit on websocket handshakes per client address, in front of the session consumer."""
from __future__ import annotations

import logging
import time
from typing import Any

from . import conf

logger = logging.getLogger(__name__)

__all__ = ("HandshakeLimiter", "limit_handshakes")

# addresses remembered at most; idle ones (a full bucket) are forgotten first
_MAX_TRACKED = 10_000


class HandshakeLimiter:
    """A token bucket per address: ``rate`` handshakes a second, in bursts of up to ``rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(address, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > _MAX_TRACKED:
            self._forget_idle(now)
        return allowed

    def _forget_idle(self, now: float) -> None:
        full = [a for a, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.rate]
        for address in full:
            del self._buckets[address]


def limit_handshakes(application: Any) -> Any:
    """Wrap the websocket application: past MAX_HANDSHAKES_PER_SECOND from one address, close 4029."""
    limiters: dict[float, HandshakeLimiter] = {}

    async def limited(scope: dict[str, Any], receive: Any, send: Any) -> None:
        rate = conf.get("MAX_HANDSHAKES_PER_SECOND")
        client = scope.get("client")
        if rate is not None and scope["type"] == "websocket" and client:
            limiter = limiters.get(rate) or limiters.setdefault(rate, HandshakeLimiter(rate))
            address = client[0]
            if not limiter.allow(address):
                logger.warning("Refusing a websocket from %s: more than %s handshakes a second", address, rate)
                await receive()  # websocket.connect
                await send({"type": "websocket.accept", "subprotocol": "bokeh" if "bokeh" in scope.get("subprotocols", ()) else None})
                await send({"type": "websocket.close", "code": 4029,
                            "reason": "too many connections from this address (MAX_HANDSHAKES_PER_SECOND)"})
                return
        await application(scope, receive, send)

    return limited
