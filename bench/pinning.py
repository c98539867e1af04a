"""Pin a benchmarked server to one CPU core, and optionally saturate that core with busy processes.

Both servers are pinned the same way: every thread of the server process and of its children
(threads started later inherit the affinity of the thread that starts them). A "busy" process is
a plain Python spin loop pinned to the same core; the kernel shares the core fairly between the
runnable processes, so with ``n`` of them the server gets about ``1 / (n + 1)`` of the core.

On a machine shared with other work, the bench client itself may be starved and read many
messages at once; run it at a higher priority (as root: ``nice -n -10``) and give ``niceness=0``
here, so the server and its spinners still compete as equals while the client keeps up.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import psutil

SPIN = "while True: pass"


def server_core() -> int:
    """The core a pinned server runs on: the last one this process may use."""
    return max(os.sched_getaffinity(0))


def pin(pid: int, core: int, niceness: int | None = None) -> None:
    """Restrict every thread of ``pid`` and of its child processes to ``core`` (and set their niceness)."""
    processes = [psutil.Process(pid)]
    processes += processes[0].children(recursive=True)
    for process in processes:
        for thread in process.threads():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(thread.id, {core})
                if niceness is not None:
                    os.setpriority(os.PRIO_PROCESS, thread.id, niceness)


def others(core: int) -> set[int]:
    """The cores other than ``core`` (where the bench client should stay), or all if there is one."""
    rest = os.sched_getaffinity(0) - {core}
    return rest or os.sched_getaffinity(0)


@contextlib.contextmanager
def busy(core: int, count: int, niceness: int | None = None) -> Iterator[list[int]]:
    """Run ``count`` spinning processes on ``core`` until the block ends; yields their pids."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    try:
        for spinner in spinners:
            os.sched_setaffinity(spinner.pid, {core})
            if niceness is not None:
                os.setpriority(os.PRIO_PROCESS, spinner.pid, niceness)
        yield [s.pid for s in spinners]
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children so far."""
    process = psutil.Process(pid)
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = each.cpu_times()
            total += times.user + times.system
    return total
