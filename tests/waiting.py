"""Waiting for events instead of for the clock: the suite must pass on a busy 2-core machine.

A test waits until the condition it asserts holds, with a deadline generous enough for a loaded
machine; the deadline only bounds a failure, it never decides a pass.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE = 20.0
# how often a condition is polled: short enough not to slow a test, long enough not to busy the loop
POLL_LOOP, POLL_THREAD = 0.005, 0.02


def _failure(what: str | None, predicate: Callable[[], object], timeout: float) -> AssertionError:
    name = what or getattr(predicate, "__name__", repr(predicate))
    return AssertionError(f"still not true after {timeout:.0f} s: {name}")


async def eventually(predicate: Callable[[], T], *, timeout: float = DEADLINE, what: str | None = None) -> T:
    """Poll ``predicate`` on the running loop until it returns something truthy; return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise _failure(what, predicate, timeout)
        await asyncio.sleep(POLL_LOOP)


def wait_until(predicate: Callable[[], T], *, timeout: float = DEADLINE, what: str | None = None) -> T:
    """Poll ``predicate`` from a plain thread until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _failure(what, predicate, timeout)
        time.sleep(POLL_THREAD)
