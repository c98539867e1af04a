"""Where a server process's threads run: together on one CPU core while it has room, else anywhere.

The event loop hands each synchronous callback to an app-code thread and takes the result back:
two turns of the GIL per callback. When the two threads sit on different cores each turn wakes
the other core with an interrupt (on a virtual machine, an exit to the hypervisor) and moves the
GIL's memory between caches; on one core a turn is a context switch. The slider benchmark
measured 30-40 % less server CPU per round trip and 1.4-1.8x the round trips per second with the
process on one core (bench/RESULTS.md, ninth round).

One core is worse than several when something else needs it too, so ``CorePlacement`` (the
``PIN_CORES = "auto"`` default of ``runbokeh``) keeps watching, once a second:

- other processes took a quarter or more of the process's core: move to a core that is at least
  half idle (at most once in ten seconds: a client talking to the server may follow it there);
  with none, spread over every core if the core was full and they took half of it or more, and
  try one core again later;
- the process used its whole core: spread for one interval to see whether it uses more than one
  core then (app code releasing the GIL, as numpy on big arrays does); if it does, stay spread
  and try again later, else go back to one core and look again later;
- someone else changed the process's cores (``taskset``, a container runtime): leave them alone.

``pin_to_core`` is the fixed placement (``runbokeh --pin-cores``): one core for the process's life.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

__all__ = ("CorePlacement", "Sample", "can_place", "pin_to_core", "place_threads", "read_sample")

CHECK_SECONDS = 1.0
# share of the process's core that other processes may take before it moves to a core with room
# (IDLE_ENOUGH idle or more), at most once per MOVE_PAUSE_SECONDS (a client talking to the server may
# follow it); with no such core, it spreads only when others take CROWDED or more of a full core
OTHERS_LIMIT, IDLE_ENOUGH, MOVE_PAUSE_SECONDS, CROWDED = 0.25, 0.5, 10.0, 0.5
# how busy a core, or the process itself (1.0 = a core), counts as full; the process's CPU that counts as using more than one
FULL, PARALLEL = 0.9, 1.2
# seconds before trying one core again after leaving it (doubling on each try that fails, up to the maximum)
RETRY_SECONDS, MAX_RETRY_SECONDS = 30.0, 300.0


def can_place() -> bool:
    """Whether this platform lets a process choose its threads' cores (Linux)."""
    return hasattr(os, "sched_setaffinity") and os.path.isdir("/proc/self/task")


def place_threads(cores: set[int]) -> None:
    """Let every thread of this process run on ``cores`` only; threads started later inherit it."""
    for thread in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(thread), cores)
        except ProcessLookupError:  # the thread ended meanwhile
            pass


def pin_to_core(index: int) -> int:
    """Keep every thread of this process (and those it starts later) on one CPU core; return the core.

    Worker ``index`` gets the ``index``-th core this process may use (wrapping round). Nothing of
    the process then runs on another core, not even app code that releases the GIL, and the kernel
    cannot move it off a core that other work keeps busy: ``CorePlacement`` watches for both.
    """
    if not hasattr(os, "sched_setaffinity"):
        raise OSError("pinning to a CPU core needs os.sched_setaffinity, which this platform lacks")
    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[index % len(allowed)]
    if os.path.isdir("/proc/self/task"):
        place_threads({core})
    else:
        os.sched_setaffinity(0, {core})
    return core


@dataclass(frozen=True)
class Sample:
    """CPU counters at one moment: the process's CPU seconds and each core's busy and total ticks."""

    at: float
    process_cpu: float
    cores: dict[int, tuple[int, int]]


def read_sample() -> Sample:
    """This process's CPU time and every core's counters from /proc/stat (time stolen by a hypervisor left out)."""
    cores: dict[int, tuple[int, int]] = {}
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if not (line.startswith(b"cpu") and line[3:4].isdigit()):
                continue
            name, *fields = line.split()
            user, nice, system, idle, iowait, irq, softirq = (int(field) for field in fields[:7])
            busy = user + nice + system + irq + softirq
            cores[int(name[3:])] = (busy, busy + idle + iowait)
    return Sample(time.monotonic(), time.process_time(), cores)


class CorePlacement:
    """Keeps this process on one core while that pays, watching from the event loop (see the module).

    Made early (its first look at the cores), begun when the server is about to serve. ``read``,
    ``place`` and ``current`` (the process's counters, the call that moves its threads and the
    cores they may use now) are replaceable in tests.
    """

    def __init__(
        self,
        *,
        read: Callable[[], Sample] | None = None,
        place: Callable[[set[int]], None] | None = None,
        current: Callable[[], set[int]] | None = None,
    ) -> None:
        self._read = read or (lambda: read_sample())
        self._place = place or (lambda cores: place_threads(cores))  # looked up when called
        self._current = current or (lambda: set(os.sched_getaffinity(0)))
        self.allowed = frozenset(self._current())
        self.core: int | None = None  # the one core, None while spread over every allowed core
        self.watching = len(self.allowed) > 1
        self._applied = set(self.allowed)
        self._last: Sample | None = self._read() if self.watching else None
        self._move_at = 0.0  # when a move for a crowded core may happen again
        self._pinned_at = 0.0  # when the process last went from every core to one
        self._retry_at = 0.0  # when spread: when to try one core again
        self._retry = RETRY_SECONDS
        self._probe_at = 0.0  # when on one full core: when to look whether the process wants more
        self._probe = RETRY_SECONDS
        self._probing = False
        self._handle: asyncio.TimerHandle | None = None

    def begin(self, worker: int | None = None) -> None:
        """Take one core: a worker's own (the ``worker``-th allowed core), else the least busy since the placement was made."""
        if not self.watching:
            logger.info("Threads may use only core(s) %s here: nothing to place", sorted(self.allowed))
            return
        try:
            self._begin(worker)
        except OSError as exc:  # e.g. a core taken away meanwhile: serving matters more than placing
            logger.warning("Could not keep this process on one CPU core (%s); the kernel places its threads", exc)
            self.watching = False

    def _begin(self, worker: int | None) -> None:
        if worker is not None:
            ordered = sorted(self.allowed)
            self._pin(ordered[worker % len(ordered)], "the worker's own core")
            self._last = self._read()
        else:
            last, self._last = self._last, self._read()
            assert last is not None
            self._pin(_idlest({core: _busy(last.cores.get(core), self._last.cores.get(core)) for core in self.allowed}),
                      "the least busy core")
        self._probe_at = self._last.at + self._probe

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Check the placement on ``loop`` every ``CHECK_SECONDS`` until ``stop``."""
        if self.watching:
            self._handle = loop.call_later(CHECK_SECONDS, self._tick, loop)

    def stop(self, *, spread: bool = False) -> None:
        """Stop watching; with ``spread``, give the threads every allowed core back first."""
        if spread and self.watching and self._applied != set(self.allowed):
            self._spread()
            self.core = None
        self.watching = False
        if self._handle is not None:
            self._handle.cancel()

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self.check()
        except Exception:  # placement is an optimisation: never let it break the loop
            logger.exception("Watching the process's CPU cores failed; the kernel places its threads from now on")
            self.stop()
            return
        self.watch(loop)

    def check(self) -> None:
        """One step: compare the last interval's counters with the placement and change it if it no longer pays."""
        if not self.watching:
            return
        if self._current() != self._applied:
            logger.info("This process's CPU cores were set from outside (%s); bokehserver leaves them alone",
                        sorted(self._current()))
            self.stop()
            return
        sample, last = self._read(), self._last
        self._last = sample
        if last is None or sample.at <= last.at:
            return
        elapsed = sample.at - last.at
        ours = (sample.process_cpu - last.process_cpu) / elapsed
        busy = {core: _busy(last.cores.get(core), sample.cores.get(core)) for core in self.allowed}
        if self._probing:
            self._end_probe(sample.at, ours, busy)
        elif self.core is None:
            if sample.at >= self._retry_at:
                self._pin(_idlest(busy), "trying one core again")
        else:
            others = busy[self.core] - min(ours, busy[self.core])
            if others >= OTHERS_LIMIT and sample.at >= self._move_at:
                self._leave(sample.at, busy, others)
            elif ours >= FULL and sample.at >= self._probe_at:
                self._probing = True
                self._spread()
                logger.debug("Core %d is full: spreading for %.0f s to see whether the process uses more",
                             self.core, CHECK_SECONDS)

    def _end_probe(self, now: float, ours: float, busy: dict[int, float]) -> None:
        self._probing = False
        if ours >= PARALLEL:
            logger.info("The process used %.1f cores when free to: its threads stay spread over cores %s",
                        ours, sorted(self.allowed))
            self._stay_spread(now)
        else:
            self._pin(self.core if self.core is not None else _idlest(busy), "")
            self._probe = min(2 * self._probe, MAX_RETRY_SECONDS)
            self._probe_at = now + self._probe

    def _leave(self, now: float, busy: dict[int, float], others: float) -> None:
        """Other processes crowd the core: move to one with room, or spread if they take half of a full core."""
        assert self.core is not None
        why = f"other processes took {others:.0%} of core {self.core}"
        idle = [core for core in self.allowed if core != self.core and busy[core] <= IDLE_ENOUGH]
        if idle:
            target = min(idle, key=busy.__getitem__)
            self._pin(target, f"{why}; core {target} was {1 - busy[target]:.0%} idle")
            self._move_at = now + MOVE_PAUSE_SECONDS
            return
        if others < CROWDED or busy[self.core] < FULL:
            return
        logger.info("%s and no core is half idle: threads spread over cores %s", why, sorted(self.allowed))
        self._spread()
        self._stay_spread(now)

    def _stay_spread(self, now: float) -> None:
        """Give up the one core until the next try, which waits twice as long as this one did."""
        self.core = None
        if now - self._pinned_at >= MAX_RETRY_SECONDS:  # one core paid for a good while: a fresh start
            self._retry = RETRY_SECONDS
        self._retry_at = now + self._retry
        self._retry = min(2 * self._retry, MAX_RETRY_SECONDS)

    def _pin(self, core: int, why: str) -> None:
        self._place({core})
        self._applied = {core}
        if self.core is None:
            self._pinned_at = self._last.at if self._last is not None else 0.0
        if core != self.core and why:
            logger.info("Threads of process %d kept on CPU core %d (%s)", os.getpid(), core, why)
        self.core = core

    def _spread(self) -> None:
        self._place(set(self.allowed))
        self._applied = set(self.allowed)


def _busy(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float:
    """Busy fraction of one core between two readings (1.0 when unknown: a core gone offline is no place to go)."""
    if before is None or after is None or after[1] <= before[1]:
        return 1.0
    return (after[0] - before[0]) / (after[1] - before[1])


def _idlest(busy: dict[int, float]) -> int:
    return min(sorted(busy), key=busy.__getitem__)
