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

Ticks of different callbacks with the same period are spread over that period (``Phases``):
many sessions of one app (a 20 Hz stream in each) would otherwise tick at phases set by when
each page opened, some nearly together, and the later of two colliding ticks waits for the
other, a little more or less each period: uneven updates with CPU to spare. A period is cut
into slots of about a millisecond; a callback's first tick moves to the start of the soonest
slot the fewest callbacks use, by at most ``MAX_SHIFT`` (a slot's width at least, never earlier).
"""
from __future__ import annotations

import math

__all__ = ("MAX_SHIFT", "MIN_SPACING", "Phases", "TickSchedule")

MIN_SPACING = 0.5
"""The shortest start-to-start gap between two ticks, in periods."""

MAX_SHIFT = 0.1
"""How far (seconds) ``Phases`` may move a callback's first tick, for periods longer than that."""

SLOT, MAX_SLOTS = 0.001, 256
"""A period is divided into phases of about a millisecond (at most ``MAX_SLOTS`` of them)."""


class TickSchedule:
    """The due times of one periodic callback started at ``now``; times are a loop's clock in seconds."""

    __slots__ = ("anchor", "due", "period", "skipped")

    def __init__(self, period: float, now: float, first: float | None = None) -> None:
        """``first``: when the first tick is due, if not one period after ``now`` (``Phases.place``)."""
        if period <= 0:
            raise ValueError(f"period must be > 0 seconds, got {period!r}")
        self.period = period
        self.anchor = self.due = now + period if first is None else first  # the tick waited for, and when it runs
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


class Phases:
    """How many periodic callbacks tick at each phase of each period, on one loop's clock."""

    __slots__ = ("_used",)

    def __init__(self) -> None:
        self._used: dict[float, list[int]] = {}  # period -> callbacks per phase slot

    def place(self, period: float, now: float) -> tuple[float, int]:
        """The first due time for a callback of ``period`` added at ``now``, and its slot (for ``release``).

        The first slot starting one period after ``now`` or later, within ``MAX_SHIFT`` of it,
        that the fewest callbacks use (the soonest of those).
        """
        if period <= 0:
            raise ValueError(f"period must be > 0 seconds, got {period!r}")
        earliest = now + period
        count = min(MAX_SLOTS, max(1, int(period / SLOT)))
        used = self._used.setdefault(period, [0] * count)
        width = period / count
        base = earliest - earliest % period
        first = math.ceil((earliest - base) / width - 1e-9)
        best, best_due = -1, 0.0
        for step in range(count):
            due = base + (first + step) * width
            if step and due - earliest > MAX_SHIFT:
                break
            slot = (first + step) % count
            if best < 0 or used[slot] < used[best]:
                best, best_due = slot, due
                if not used[slot]:
                    break
        used[best] += 1
        return best_due, best

    def release(self, period: float, slot: int) -> None:
        """A callback placed with ``place`` stopped."""
        used = self._used.get(period)
        if used is not None and used[slot] > 0:
            used[slot] -= 1
            if not any(used):
                del self._used[period]
