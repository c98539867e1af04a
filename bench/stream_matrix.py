"""bench/stream.py's measure() over several conditions: two bokehserver trees and bokeh serve, alternating.

    nice -n -10 .venv/bin/python bench/stream_matrix.py BEFORE_DIR AFTER_DIR RUNS SECONDS 50:1:3,50:1:0,10:0:0

A condition is ``sessions:pinned:busy`` (pinned 1 = server on one core, this client on the others;
busy = spinning processes sharing the server's core). Each condition runs RUNS times; within a
run the three servers take turns, in reverse order on odd runs. Every server runs at niceness 0
even when this client was started at a higher priority (on a shared machine a starved client reads
many messages at once, see bench/pinning.py). Prints one JSON line per measurement.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pinning import cpu_seconds  # noqa: E402
from servers import running  # noqa: E402
from stream import APP, measure, pinned  # noqa: E402


def main() -> None:
    before, after, runs, seconds, conditions = sys.argv[1:6]
    roots = {"before": before, "after": after, "bokeh serve": None}
    order = list(roots)
    for condition in conditions.split(","):
        sessions, pin, spinners = map(int, condition.split(":"))
        for run in range(int(runs)):
            for name in order if run % 2 == 0 else order[::-1]:
                root = roots[name]
                if root:
                    os.environ["BENCH_SERVER_ROOT"] = root
                with running("bokehserver" if root else "bokeh serve", [APP], "/stream") as server:
                    for thread in psutil.Process(server.pid).threads():
                        with contextlib.suppress(ProcessLookupError):
                            os.setpriority(os.PRIO_PROCESS, thread.id, 0)
                    with pinned(server.pid, spinners) if pin else contextlib.nullcontext():
                        cpu, started = cpu_seconds(server.pid), time.perf_counter()
                        figures = asyncio.run(measure(server.url, sessions, float(seconds)))
                        figures["cpu_pct"] = 100 * (cpu_seconds(server.pid) - cpu) / (time.perf_counter() - started)
                figures.update(name=name, sessions=sessions, pin=pin, busy=spinners, run=run, load=os.getloadavg()[0])
                print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
