"""When a periodic callback's next tick is due, and what becomes of ticks the loop was too busy to run.

The overload policy, for sessions' periodic callbacks and the server's own jobs alike:

- Ticks are anchored: the k-th is due at ``start + k * period``. A callback whose ticks run on
  time never drifts, however long it keeps running.
- A late tick runs once, as soon as the loop gets to it. Ticks that fell due before it started,
  or while it ran, are skipped: never run back to back to catch up, so a saturated loop is not
  handed more work just when it has the least room for it.
- Two ticks never start less than half a period apart (``MIN_SPACING``): when a tick started so
  late that the next anchored tick falls closer than that, the next one is held back to half a
  period after it (not dropped), and the one after is on its anchor again. A tick late by less
  than a period therefore costs no rows, and a client never sees two updates nearly at once.
- A tick is never due before the previous one has finished: one at a time.

Under overload every callback sleeps until its own due time and the loop wakes sleepers in due
order, so each session's callbacks are late by about the same amount and skip about the same
share of ticks: every session's rate degrades evenly; none is starved, none bursts.
"""
from __future__ import annotations

import math

__all__ = ("MIN_SPACING", "TickSchedule")

MIN_SPACING = 0.5
"""The shortest start-to-start gap between two ticks, in periods."""


class TickSchedule:
    """The due times of one periodic callback started at ``now``; times are a loop's clock in seconds."""

    __slots__ = ("anchor", "due", "period", "skipped")

    def __init__(self, period: float, now: float) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0 seconds, got {period!r}")
        self.period = period
        self.anchor = self.due = now + period  # the anchored tick being waited for, and when it runs
        self.skipped = 0

    def advance(self, started: float, finished: float) -> float:
        """Move past the tick that ran from ``started`` to ``finished``; returns the next due time.

        The next tick is the first anchored one after ``started``, held back to ``MIN_SPACING``
        periods after ``started`` if it falls sooner; if the run lasted past that, the first anchored
        tick after ``finished``. Anchored ticks passed over count in ``skipped``.
        """
        earliest = started + MIN_SPACING * self.period
        anchor = self._first_after(started)
        if finished >= max(anchor, earliest):
            anchor = self._first_after(finished)
        self.skipped += round((anchor - self.anchor) / self.period) - 1
        self.anchor, self.due = anchor, max(anchor, earliest)
        return self.due

    def skip(self, now: float) -> float:
        """Pass over the tick due at ``now`` without running it; returns the next due time."""
        self.skipped += 1
        return self.advance(now, now)

    def _first_after(self, moment: float) -> float:
        """The first anchored tick after ``moment`` and after the current one."""
        steps = max(1, math.floor((moment - self.anchor) / self.period) + 1)
        return self.anchor + steps * self.period
