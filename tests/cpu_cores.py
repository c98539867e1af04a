"""Where a server process's threads may run, read from outside (Linux), for the placement tests."""
from __future__ import annotations

import contextlib
import os

import psutil


def thread_cores(pid: int) -> set[frozenset[int]]:
    """The sets of CPU cores the threads of ``pid`` may run on (one set when they all agree)."""
    cores = set()
    for thread in psutil.Process(pid).threads():
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            cores.add(frozenset(os.sched_getaffinity(thread.id)))
    return cores


def one_core(pid: int) -> frozenset[int] | None:
    """The one core every thread of ``pid`` may run on, if they all share a single one."""
    cores = thread_cores(pid)
    placed = next(iter(cores)) if len(cores) == 1 else frozenset()
    return placed if len(placed) == 1 else None
