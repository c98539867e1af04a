"""CorePlacement: one core while it has room; moving, spreading and trying again when it has not."""
from __future__ import annotations

import asyncio
import logging
import os
import threading

import pytest

from bokehserver import core_placement
from bokehserver.core_placement import CorePlacement, Sample, read_sample


class Machine:
    """Counters of a two-core machine that a test advances one interval at a time."""

    def __init__(self, cores: int = 2) -> None:
        self.at, self.process_cpu = 100.0, 5.0
        self.counters = {core: [0, 0] for core in range(cores)}
        self.placed: list[set[int]] = []
        self.affinity = set(range(cores))

    def read(self) -> Sample:
        return Sample(self.at, self.process_cpu, {core: (busy, total) for core, (busy, total) in self.counters.items()})

    def place(self, cores: set[int]) -> None:
        self.placed.append(set(cores))
        self.affinity = set(cores)

    def interval(self, ours: float, busy: dict[int, float], seconds: float = 1.0) -> None:
        """``ours``: the process's CPU (1.0 = a core); ``busy``: each core's busy fraction, the process's share included."""
        self.at += seconds
        self.process_cpu += ours * seconds
        for core, fraction in busy.items():
            self.counters[core][0] += round(100 * seconds * fraction)
            self.counters[core][1] += round(100 * seconds)

    def run(self, placement: CorePlacement, count: int | float, ours: float, busy: dict[int, float]) -> None:
        """``count`` intervals alike, each looked at by ``placement``."""
        for _ in range(int(count)):
            self.interval(ours, busy)
            placement.check()

    def placement(self, worker: int | None = None) -> CorePlacement:
        placement = CorePlacement(read=self.read, place=self.place, current=lambda: set(self.affinity))
        placement.begin(worker)
        return placement


def test_a_single_process_takes_the_core_least_busy_while_it_loaded():
    machine = Machine()
    placement = CorePlacement(read=machine.read, place=machine.place, current=lambda: set(machine.affinity))
    machine.interval(0.3, {0: 0.9, 1: 0.2}, seconds=0.5)  # the app loading
    assert machine.placed == []
    placement.begin()
    assert machine.placed == [{1}] and placement.core == 1


def test_a_worker_takes_its_own_core():
    machine = Machine()
    machine.placement(worker=3)  # the fourth core it may use, wrapping round: core 1
    assert machine.placed == [{1}]


def test_a_process_allowed_one_core_only_has_nothing_to_watch():
    machine = Machine(cores=1)
    placement = machine.placement()
    machine.interval(1.0, {0: 1.0})
    placement.check()
    assert not placement.watching and machine.placed == []


def test_a_core_the_process_fills_alone_is_kept():
    machine = Machine()
    placement = machine.placement(worker=0)
    machine.run(placement, 10, 0.97, {0: 1.0, 1: 0.3})  # before the first look at whether it wants more than one core
    assert machine.placed == [{0}] and placement.core == 0


def test_other_processes_crowding_the_core_move_the_process_to_an_idle_one(caplog):
    machine = Machine()
    placement = machine.placement(worker=0)
    machine.interval(0.6, {0: 0.8, 1: 0.05})  # others took 20 %: stay
    placement.check()
    assert placement.core == 0
    with caplog.at_level(logging.INFO, logger="bokehserver.core_placement"):
        machine.interval(0.5, {0: 1.0, 1: 0.1})  # others took half of it
        placement.check()
    assert machine.placed[-1] == {1} and placement.core == 1
    assert "other processes took 50% of core 0; core 1 was 90% idle" in caplog.text


def test_a_move_waits_before_the_next_one():
    machine = Machine()
    placement = machine.placement(worker=0)
    machine.interval(0.6, {0: 1.0, 1: 0.2})
    placement.check()
    assert placement.core == 1
    for _ in range(int(core_placement.MOVE_PAUSE_SECONDS) - 1):  # a client following the server there
        machine.interval(0.6, {0: 0.2, 1: 1.0})
        placement.check()
    assert placement.core == 1
    machine.interval(0.6, {0: 0.2, 1: 1.0})
    placement.check()
    assert placement.core == 0
    machine.run(placement, 20, 0.4, {0: 0.6, 1: 0.1})  # others take a fifth: not worth a move
    assert machine.placed == [{0}, {1}, {0}]


def test_a_neighbour_on_a_core_with_room_moves_the_process_only_where_there_is_more_room():
    machine = Machine()
    placement = machine.placement(worker=0)
    machine.run(placement, 20, 0.1, {0: 0.7, 1: 0.8})  # no core half idle, and its own core not full: it stays
    assert machine.placed == [{0}]
    machine.interval(0.1, {0: 0.4, 1: 0.3})  # a neighbour took 30 % of it, the other core has room
    placement.check()
    assert machine.placed == [{0}, {1}]


def test_others_taking_less_than_half_of_a_full_core_with_no_idle_core_elsewhere_keep_it():
    machine = Machine()
    placement = machine.placement(worker=0)
    machine.run(placement, 20, 0.65, {0: 1.0, 1: 0.95})
    assert machine.placed == [{0}] and placement.core == 0


def test_with_no_idle_core_the_process_spreads_and_tries_one_core_again_later(caplog):
    machine = Machine()
    placement = machine.placement(worker=0)
    with caplog.at_level(logging.INFO, logger="bokehserver.core_placement"):
        machine.interval(0.4, {0: 1.0, 1: 0.9})
        placement.check()
    assert machine.placed[-1] == {0, 1} and placement.core is None
    assert "no core is half idle: threads spread over cores [0, 1]" in caplog.text
    for _ in range(int(core_placement.RETRY_SECONDS) - 1):
        machine.interval(0.4, {0: 0.9, 1: 0.5})
        placement.check()
    assert placement.core is None
    machine.interval(0.4, {0: 0.9, 1: 0.5})
    placement.check()
    assert machine.placed[-1] == {1} and placement.core == 1  # the less busy core
    # crowded again at once: the next try waits twice as long
    machine.interval(0.4, {0: 1.0, 1: 1.0})
    placement.check()
    assert placement.core is None
    for _ in range(int(2 * core_placement.RETRY_SECONDS) - 1):
        machine.interval(0.4, {0: 0.9, 1: 0.6})
        placement.check()
    assert placement.core is None


def test_a_long_stretch_on_one_core_starts_the_waits_afresh():
    machine = Machine()
    placement = machine.placement(worker=0)
    for crowded in range(3):  # tries at 30, then 60, then 120 s
        machine.interval(0.3, {0: 1.0, 1: 1.0})
        placement.check()
        assert placement.core is None
        while placement.core is None:
            machine.interval(0.3, {0: 0.9, 1: 0.9})
            placement.check()
    machine.run(placement, int(core_placement.MAX_RETRY_SECONDS), 0.3, {0: 0.4, 1: 0.4})
    machine.interval(0.3, {0: 1.0, 1: 1.0})
    placement.check()
    waited = 0
    while placement.core is None:
        machine.interval(0.3, {0: 0.9, 1: 0.9})
        placement.check()
        waited += 1
    assert waited == core_placement.RETRY_SECONDS


def test_a_full_core_is_left_for_a_look_and_kept_when_the_process_cannot_use_more():
    machine = Machine()
    placement = machine.placement(worker=0)
    machine.run(placement, int(core_placement.RETRY_SECONDS), 1.0, {0: 1.0, 1: 0.2})
    assert machine.placed[-1] == {0, 1}  # the look: spread for one interval
    machine.interval(1.05, {0: 0.6, 1: 0.6})  # one core's worth, GIL-bound
    placement.check()
    assert machine.placed[-1] == {0} and placement.core == 0
    looks = len(machine.placed)
    for _ in range(int(2 * core_placement.RETRY_SECONDS) - 1):  # the next look waits twice as long
        machine.interval(1.0, {0: 1.0, 1: 0.2})
        placement.check()
    assert len(machine.placed) == looks


def test_a_process_that_uses_more_than_a_core_when_free_to_stays_spread(caplog):
    machine = Machine()
    placement = machine.placement(worker=0)
    machine.run(placement, int(core_placement.RETRY_SECONDS), 1.0, {0: 1.0, 1: 0.1})
    with caplog.at_level(logging.INFO, logger="bokehserver.core_placement"):
        machine.interval(1.8, {0: 0.95, 1: 0.9})  # app code releasing the GIL on both cores
        placement.check()
    assert machine.placed[-1] == {0, 1} and placement.core is None
    assert "used 1.8 cores when free to" in caplog.text
    machine.run(placement, int(core_placement.RETRY_SECONDS), 0.2, {0: 0.1, 1: 0.2})
    assert placement.core == 0  # tried again once the wait was over


def test_cores_set_from_outside_are_left_alone(caplog):
    machine = Machine()
    placement = machine.placement(worker=0)
    machine.affinity = {1}  # taskset, or a benchmark pinning the server itself
    with caplog.at_level(logging.INFO, logger="bokehserver.core_placement"):
        machine.interval(0.2, {0: 1.0, 1: 1.0})
        placement.check()
    assert not placement.watching and machine.placed == [{0}]
    assert "set from outside ([1]); bokehserver leaves them alone" in caplog.text


async def test_a_failing_look_stops_the_watch_and_leaves_the_loop_running(caplog):
    def broken() -> Sample:
        raise OSError("no /proc here")

    machine = Machine()
    placement = machine.placement()
    placement._read = broken
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.ERROR, logger="bokehserver.core_placement"):
        placement._tick(loop)
    assert not placement.watching and placement._handle is None
    assert "the kernel places its threads from now on" in caplog.text
    assert (await asyncio.sleep(0, "still running")) == "still running"


def test_a_core_that_cannot_be_taken_at_start_leaves_the_threads_to_the_kernel(caplog):
    def refused(cores: set[int]) -> None:
        raise OSError(22, "Invalid argument")

    machine = Machine()
    placement = CorePlacement(read=machine.read, place=refused, current=lambda: set(machine.affinity))
    with caplog.at_level(logging.WARNING, logger="bokehserver.core_placement"):
        placement.begin(worker=0)
    assert not placement.watching and placement.core is None
    assert "Could not keep this process on one CPU core ([Errno 22] Invalid argument)" in caplog.text


def test_stopping_can_give_every_core_back():
    machine = Machine()
    placement = machine.placement(worker=1)
    placement.stop(spread=True)
    assert machine.placed == [{1}, {0, 1}] and not placement.watching and placement.core is None


@pytest.mark.skipif(not core_placement.can_place(), reason="placing threads needs Linux's sched_setaffinity and /proc")
def test_placing_threads_moves_every_thread_of_the_process_and_later_threads_inherit_it():
    allowed = os.sched_getaffinity(0)
    release = threading.Event()
    early = threading.Thread(target=release.wait)
    early.start()
    try:
        core = min(allowed)
        core_placement.place_threads({core})
        seen: list[set[int]] = []
        late = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        late.start()
        late.join()
        assert os.sched_getaffinity(early.native_id) == {core} and seen == [{core}]
    finally:
        core_placement.place_threads(allowed)
        release.set()
        early.join()
    assert os.sched_getaffinity(0) == allowed


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads Linux's /proc/stat")
def test_a_real_sample_counts_every_allowed_core_and_this_process():
    sample = read_sample()
    assert set(os.sched_getaffinity(0)) <= set(sample.cores)
    assert all(0 <= busy <= total for busy, total in sample.cores.values())
    assert sample.process_cpu > 0
