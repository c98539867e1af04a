"""Streaming at 20 Hz to many sessions: rows delivered and period jitter, bokehserver vs bokeh serve.

Each session of ``bench/apps/stream.py`` streams 10 rows every 50 ms. The client opens N
sessions on each server (same run, alternating servers per round), then for a window of D
seconds counts the rows whose message arrived in the window and the gaps between consecutive
arrivals on one session. Arrival is when the client parsed the message off its socket, not when
its reader task got to it, so the client's own queueing does not count against the server.

- delivered % = rows arrived in the window / (N x D / 50 ms x 10). Messages queued before the
  window (while other sessions were still opening) are not counted, so a server that keeps time
  scores 100 % (+- edge ticks); above 100 % means ticks came faster than 20 Hz: catch-up bursts.
- jitter = |gap - 50 ms| over every gap, p50 and p99.
- burst % = gaps shorter than half a period (two ticks nearly back to back), in % of gaps.
- worst session % = the least-served session's rows, in % of its due: is any session starved?
- tick jitter and tick burst %: the same over the times the server's ticks ran (the app writes
  them into column "t"), which the client's own scheduling cannot blur. On a shared machine a
  starved client reads many messages at once and arrival bursts appear that the server never made.

    .venv/bin/python bench/stream.py [--sessions 50] [--seconds 20] [--rounds 1] [--pin] [--busy 2]

``--pin`` pins each server to one core (and this client to the others); ``--busy N`` also runs N
spinning processes on the server's core, so the server gets about 1/(N+1) of it (saturation).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import BokehSession, percentile  # noqa: E402
from pinning import busy, cpu_seconds, others, pin, server_core  # noqa: E402
from servers import ROOT, running  # noqa: E402

APP = str(ROOT / "bench" / "apps" / "stream.py")
ROWS, PERIOD = 10, 0.050
GRACE = 0.5


async def measure(url: str, sessions: int, seconds: float) -> dict[str, float]:
    clients = [BokehSession(url, "/stream") for _ in range(sessions)]
    await asyncio.gather(*(c.open() for c in clients))
    await asyncio.gather(*(c.pull() for c in clients))
    start = time.perf_counter()
    end = start + seconds
    rows = [0] * sessions
    gaps: list[float] = []
    tick_gaps: list[float] = []

    async def listen(index: int, client: BokehSession) -> None:
        last = last_tick = None
        while True:  # read on a little past the window, for what arrived in it but was not read yet
            remaining = end + GRACE - time.perf_counter()
            if remaining <= 0:
                return
            try:
                message = await asyncio.wait_for(client.recv(), remaining)
            except asyncio.TimeoutError:
                return
            if message.msgtype != "PATCH-DOC":
                continue
            arrived = message.arrived_at
            if arrived < start:
                continue
            if arrived > end:
                return
            for event in message.content["events"]:
                if event.get("kind") == "ColumnsStreamed":
                    data = event["data"]
                    column = data["entries"][0][1] if isinstance(data, dict) and "entries" in data else data["i"]
                    rows[index] += len(column) if isinstance(column, list) else ROWS
                    ticked = _first_time(data)
                    if ticked is not None:
                        if last_tick is not None:
                            tick_gaps.append(ticked - last_tick)
                        last_tick = ticked
            if last is not None:
                gaps.append(arrived - last)
            last = arrived

    await asyncio.gather(*(listen(i, c) for i, c in enumerate(clients)))
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    due = seconds / PERIOD * ROWS
    jitter = [abs(g - PERIOD) * 1000 for g in gaps]
    tick_jitter = [abs(g - PERIOD) * 1000 for g in tick_gaps] or [0.0]
    return {
        "delivered_pct": 100.0 * sum(rows) / (sessions * due),
        "worst_session_pct": 100.0 * min(rows) / due,
        "jitter_p50_ms": percentile(jitter, 50),
        "jitter_p99_ms": percentile(jitter, 99),
        "burst_pct": 100.0 * sum(g < PERIOD / 2 for g in gaps) / max(1, len(gaps)),
        "tick_jitter_p50_ms": percentile(tick_jitter, 50),
        "tick_jitter_p99_ms": percentile(tick_jitter, 99),
        "tick_burst_pct": 100.0 * sum(g < PERIOD / 2 for g in tick_gaps) / max(1, len(tick_gaps)),
        "rows_per_s": sum(rows) / seconds,
    }


def _first_time(data: Any) -> float | None:
    """The tick time (column "t") of a ColumnsStreamed event's data, or None if it is not there."""
    column = dict(data["entries"]).get("t") if isinstance(data, dict) and "entries" in data else data.get("t")
    if isinstance(column, dict) and column.get("type") == "ndarray":
        return None
    return float(column[0]) if column else None


@contextlib.contextmanager
def pinned(server_pid: int, spinners: int) -> Iterator[None]:
    """Pin the server to one core (this process to the others) and run ``spinners`` busy loops beside it.

    The server and the spinners run at niceness 0 even when this client was started at a higher
    priority (``nice -n -10``, see ``pinning``).
    """
    core = server_core()
    mine = os.sched_getaffinity(0)
    pin(server_pid, core, niceness=0)
    os.sched_setaffinity(0, others(core))
    try:
        with busy(core, spinners, niceness=0):
            yield
    finally:
        os.sched_setaffinity(0, mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--servers", default="bokehserver,bokeh serve")
    parser.add_argument("--pin", action="store_true", help="pin each server to one core, this client to the others")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes on the pinned server's core")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    kinds = args.servers.split(",")
    for round_ in range(args.rounds):
        for kind in kinds if round_ % 2 == 0 else kinds[::-1]:
            with running(kind, [APP], "/stream", placed=args.pin or bool(args.busy)) as server:
                place = pinned(server.pid, args.busy) if args.pin or args.busy else contextlib.nullcontext()
                with place:
                    cpu = cpu_seconds(server.pid)
                    figures = asyncio.run(measure(server.url, args.sessions, args.seconds))
                    figures["cpu_s"] = cpu_seconds(server.pid) - cpu
                results.setdefault(kind, []).append(figures)
                print(kind, {k: round(v, 2) for k, v in figures.items()}, flush=True)
    where = f", pinned, {args.busy} busy" if args.pin or args.busy else ""
    print(f"stream: {args.sessions} sessions x 20 Hz x 10 rows, {args.seconds:.0f} s, {args.rounds} round(s){where}")
    print(f"{'server':<14}{'delivered %':>12}{'worst %':>9}{'jitter p50':>11}{'jitter p99':>11}{'burst %':>9}{'CPU s':>7}"
          f"{'tick p50':>9}{'tick p99':>9}{'tick burst %':>13}")
    for kind, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{kind:<14}{med['delivered_pct']:>12.2f}{med['worst_session_pct']:>9.2f}{med['jitter_p50_ms']:>11.2f}"
              f"{med['jitter_p99_ms']:>11.2f}{med['burst_pct']:>9.2f}{med['cpu_s']:>7.2f}"
              f"{med['tick_jitter_p50_ms']:>9.2f}{med['tick_jitter_p99_ms']:>9.2f}{med['tick_burst_pct']:>13.2f}")


if __name__ == "__main__":
    main()
