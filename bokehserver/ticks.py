"""When a periodic callback's next tick is due, and what becomes of ticks the loop was too busy to run.

The overload policy, for sessions' periodic callbacks and the server's own jobs alike:

- Ticks are anchored: the k-th is due at ``start + k * period``. A callback whose ticks run on
  time never drifts, however long it keeps running.
- A late tick runs once, as soon as the loop gets to it. Ticks it missed entirely are skipped,
  never run back to back to catch up: a saturated loop is not handed more work just when it has
  the least room for it.
- Two ticks never start less than half a period apart (``MIN_SPACING``). When a late tick started
  so late that the next anchored tick falls closer than that, the next one is skipped too. Under
  overload a callback's rate therefore degrades by whole ticks, while the ticks that do run keep
  roughly their period between them: a client sees a slower stream, never bursts.
- A tick is never due before the previous one has finished: one at a time.

Every callback sleeps until its own due time and the loop wakes sleepers in due order, so when it
cannot keep up, each session's callbacks are late by about the same amount and skip about the
same share of ticks: every session's rate degrades evenly; none is starved, none bursts.
"""
from __future__ import annotations

import math

__all__ = ("MIN_SPACING", "TickSchedule")

MIN_SPACING = 0.5
"""The shortest start-to-start gap between two ticks, in periods."""


class TickSchedule:
    """The due times of one periodic callback started at ``now``; times are a loop's clock in seconds."""

    __slots__ = ("due", "period", "skipped")

    def __init__(self, period: float, now: float) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0 seconds, got {period!r}")
        self.period = period
        self.due = now + period
        self.skipped = 0

    def advance(self, started: float, finished: float) -> float:
        """Move past the tick that ran from ``started`` to ``finished``; returns the next due time.

        The next due time is the first anchored tick no earlier than ``finished`` and at least
        ``MIN_SPACING`` periods after ``started``; the anchored ticks passed over count in ``skipped``.
        """
        period = self.period
        earliest = max(finished, started + MIN_SPACING * period)
        # 1e-9 periods of slack: an on-time tick whose float arithmetic lands a hair past its
        # anchor must not be counted as missed
        steps = max(1, math.ceil((earliest - self.due) / period - 1e-9))
        self.skipped += steps - 1
        self.due += steps * period
        return self.due
