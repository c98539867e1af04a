"""The periodic-callback schedule and its overload policy, on a loop whose clock only moves when told."""
from __future__ import annotations

import asyncio
import selectors
from collections import defaultdict

import pytest
from bokeh.server.callbacks import PeriodicCallback as BokehPeriodic

from bokehserver.callbacks import CallbackGroup
from bokehserver.ticks import MAX_SHIFT, MIN_SPACING, Phases, TickSchedule
from bokehserver.worker import Worker, every

PERIOD = 0.050


class _VirtualSelector(selectors.DefaultSelector):
    """Instead of waiting ``timeout`` seconds for I/O, moves the loop's virtual clock on by it."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None):
        if timeout:
            self._clock[0] += timeout
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: idle waits take no real time; work "costs" what ``spend`` says."""

    def __init__(self) -> None:
        self.clock = [1000.0]
        super().__init__(_VirtualSelector(self.clock))

    def time(self) -> float:
        return self.clock[0]

    def spend(self, seconds: float) -> None:
        self.clock[0] += seconds


@pytest.fixture
def loop():
    loop = VirtualLoop()
    yield loop
    loop.close()


def _run_callbacks(loop: VirtualLoop, count: int, cost: float, ticks: int) -> dict[str, list[float]]:
    """Run ``count`` periodic callbacks costing ``cost`` loop-seconds each until one has ``ticks`` starts."""
    starts: dict[str, list[float]] = defaultdict(list)

    async def main() -> None:
        worker = Worker()
        done = asyncio.Event()

        async def invoke(callback) -> None:
            starts[callback.id].append(loop.time())
            loop.spend(cost)
            if len(starts[callback.id]) >= ticks:
                done.set()

        group = CallbackGroup(worker, loop, invoke, "test")
        for index in range(count):
            group.add(BokehPeriodic(lambda: None, PERIOD * 1000, callback_id=f"cb{index}"))
        await done.wait()
        group.remove_all()
        await worker.stop()

    loop.run_until_complete(main())
    return starts


def test_ticks_on_time_stay_anchored():
    schedule = TickSchedule(PERIOD, now=10.0)
    dues = [schedule.due]
    for _ in range(1000):
        started = schedule.due + 0.001  # always a little late, never enough to skip
        dues.append(schedule.advance(started, started + 0.002))
    assert dues[-1] == pytest.approx(10.0 + 1001 * PERIOD)  # no drift
    assert schedule.skipped == 0


@pytest.mark.parametrize(
    ("started", "finished", "due", "skipped"),
    [
        (0.070, 0.071, 0.100, 0),  # late by less than half a period: the next one stays on its anchor
        (0.050, 0.130, 0.150, 1),  # overran its successor: skipped, not started at once
        (0.050, 0.230, 0.250, 3),  # overran three and a half periods: one tick, not a burst of three
        (0.170, 0.171, 0.200, 2),  # started after two more had fallen due: those are merged into it
    ],
)
def test_ticks_due_before_a_late_tick_started_or_while_it_ran_are_skipped(started, finished, due, skipped):
    schedule = TickSchedule(PERIOD, now=0.0)
    assert schedule.advance(started, finished) == pytest.approx(due)
    assert schedule.skipped == skipped


def test_a_tick_later_than_half_a_period_holds_the_next_back_then_returns_to_the_anchor():
    schedule = TickSchedule(PERIOD, now=0.0)
    assert schedule.advance(0.080, 0.081) == pytest.approx(0.080 + MIN_SPACING * PERIOD)  # not 0.100
    assert schedule.advance(0.105, 0.106) == pytest.approx(0.150)
    assert schedule.skipped == 0  # no tick lost




def test_a_period_must_be_positive():
    with pytest.raises(ValueError):
        TickSchedule(0.0, now=0.0)


def test_periodic_callbacks_on_a_loop_with_room_run_every_period_on_the_anchor(loop):
    starts = _run_callbacks(loop, count=5, cost=0.001, ticks=40)
    added = min(times[0] for times in starts.values()) - PERIOD
    for times in starts.values():
        assert len(times) >= 39
        lateness = [t - (added + (k + 1) * PERIOD) for k, t in enumerate(times)]
        assert all(-1e-9 <= late <= 5 * 0.001 + 1e-9 for late in lateness), lateness  # the same slots, no drift


def test_callbacks_added_together_tick_at_phases_of_their_own_and_never_wait_for_each_other(loop):
    # 40 callbacks of 0.8 ms every 50 ms, all added at one instant: a third of the loop is free
    starts = _run_callbacks(loop, count=40, cost=0.0008, ticks=30)
    added = min(times[0] for times in starts.values()) - PERIOD
    for times in starts.values():
        assert 0 <= times[0] - (added + PERIOD) <= PERIOD  # moved later, never earlier, by less than a period
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(abs(gap - PERIOD) < 1e-9 for gap in gaps), gaps  # no tick ever waited for another
    phases = sorted(times[0] % PERIOD for times in starts.values())
    assert min(b - a for a, b in zip(phases, phases[1:])) >= 0.001 - 1e-9  # one at a time


def test_phases_go_to_the_least_used_slot_within_the_shift_and_come_back_when_released():
    phases = Phases()
    placed = [phases.place(PERIOD, 10.0) for _ in range(50)]
    dues = sorted(due for due, _ in placed)
    assert 10.0 + PERIOD <= dues[0] < 10.0 + PERIOD + 0.001  # the first keeps its own phase, to a slot
    assert len({slot for _, slot in placed}) == 50 and dues[-1] - dues[0] < PERIOD
    assert all(due >= 10.0 + PERIOD for due in dues)
    due, slot = phases.place(PERIOD, 10.0)  # every slot is taken once: shared from now on
    phases.release(PERIOD, slot)
    phases.release(PERIOD, placed[7][1])
    assert phases.place(PERIOD, 10.0)[1] == placed[7][1]  # the only slot in use once again fits best

    long = [phases.place(10.0, 3.0) for _ in range(100)]  # a 10 s period: moved by MAX_SHIFT at most
    assert all(13.0 <= due <= 13.0 + MAX_SHIFT + 10.0 / 256 for due, _ in long)
    with pytest.raises(ValueError):
        phases.place(0.0, 1.0)


def test_an_overloaded_loop_degrades_every_callbacks_rate_evenly_without_bursts(loop):
    # 20 callbacks of 5 ms every 50 ms ask for twice what the loop can do
    starts = _run_callbacks(loop, count=20, cost=0.005, ticks=100)
    counts = [len(times) for times in starts.values()]
    assert len(counts) == 20
    assert max(counts) - min(counts) <= 2  # nobody starved, nobody favoured
    span = max(t for times in starts.values() for t in times) - min(t for times in starts.values() for t in times)
    assert sum(counts) < 0.6 * 20 * span / PERIOD  # it did skip ticks: about half ran
    gaps = [b - a for times in starts.values() for a, b in zip(times, times[1:])]
    assert min(gaps) >= MIN_SPACING * PERIOD - 1e-9  # never two ticks close together


def test_server_jobs_skip_the_ticks_they_overran(loop):
    starts: list[float] = []

    five = asyncio.Event()

    def job() -> None:
        starts.append(loop.time())
        loop.spend(0.080 if len(starts) == 2 else 0.001)
        if len(starts) == 5:
            five.set()

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(every(PERIOD * 1000, job))
        await five.wait()
        task.cancel()

    loop.run_until_complete(main())
    gaps = [round(b - a, 6) for a, b in zip(starts, starts[1:])]
    assert gaps[0] == pytest.approx(PERIOD)
    assert gaps[1] == pytest.approx(2 * PERIOD)  # the overrun tick's successor was skipped, not run at once
    assert all(gap >= PERIOD - 1e-9 for gap in gaps)


def test_a_tick_waits_for_the_previous_ticks_bytes_to_leave_and_never_catches_up_after(loop):
    starts: list[float] = []
    backlog = [0]

    async def main() -> None:
        worker = Worker()
        done = asyncio.Event()

        async def invoke(callback) -> None:
            starts.append(loop.time())
            if len(starts) == 2:
                backlog[0] = 4096  # the client stops reading for a while
                loop.call_later(3.5 * PERIOD, backlog.__setitem__, 0, 0)
            if len(starts) == 5:
                done.set()

        group = CallbackGroup(worker, loop, invoke, "test", backlog=lambda: backlog[0])
        group.add(BokehPeriodic(lambda: None, PERIOD * 1000, callback_id="cb"))
        await done.wait()
        group.remove_all()
        await worker.stop()

    loop.run_until_complete(main())
    gaps = [round((b - a) / PERIOD, 6) for a, b in zip(starts, starts[1:])]
    assert gaps == [1, 4, 1, 1]  # three ticks skipped while bytes waited, then the plain period again
