"""Streaming at 20 Hz to many sessions: rows delivered and period jitter, bokehserver vs bokeh serve.

Each session of ``bench/apps/stream.py`` streams 10 rows every 50 ms. The client opens N
sessions on each server (same run, alternating servers per round) and, for D seconds, counts
the rows that arrive and the gaps between arrivals. Jitter is |gap - 50 ms|.

    .venv/bin/python bench/stream.py [--sessions 50] [--seconds 20] [--rounds 1]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import BokehSession, percentile  # noqa: E402
from servers import ROOT, running  # noqa: E402

APP = str(ROOT / "bench" / "apps" / "stream.py")
ROWS, PERIOD = 10, 0.050


async def measure(url: str, sessions: int, seconds: float) -> dict[str, float]:
    clients = [BokehSession(url, "/stream") for _ in range(sessions)]
    await asyncio.gather(*(c.open() for c in clients))
    await asyncio.gather(*(c.pull() for c in clients))
    start = time.perf_counter()
    end = start + seconds
    rows = [0] * sessions
    gaps: list[float] = []

    async def listen(index: int, client: BokehSession) -> None:
        last = None
        while True:
            remaining = end - time.perf_counter()
            if remaining <= 0:
                return
            try:
                message = await asyncio.wait_for(client.recv(), remaining)
            except asyncio.TimeoutError:
                return
            if message.msgtype != "PATCH-DOC":
                continue
            for event in message.content["events"]:
                if event.get("kind") == "ColumnsStreamed":
                    data = event["data"]
                    column = data["entries"][0][1] if isinstance(data, dict) and "entries" in data else data["i"]
                    rows[index] += len(column) if isinstance(column, list) else ROWS
            if last is not None:
                gaps.append(message.received_at - last)
            last = message.received_at

    await asyncio.gather(*(listen(i, c) for i, c in enumerate(clients)))
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    expected = sessions * seconds / PERIOD * ROWS
    jitter = [abs(g - PERIOD) * 1000 for g in gaps]
    return {
        "delivered_pct": 100.0 * sum(rows) / expected,
        "jitter_p50_ms": percentile(jitter, 50),
        "jitter_p99_ms": percentile(jitter, 99),
        "rows_per_s": sum(rows) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--servers", default="bokehserver,bokeh serve")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for kind in args.servers.split(","):
            with running(kind, [APP], "/stream") as server:
                results.setdefault(kind, []).append(asyncio.run(measure(server.url, args.sessions, args.seconds)))
    print(f"stream: {args.sessions} sessions x 20 Hz x 10 rows, {args.seconds:.0f} s, {args.rounds} round(s)")
    print(f"{'server':<14}{'delivered %':>12}{'rows/s':>10}{'jitter p50 ms':>15}{'jitter p99 ms':>15}")
    for kind, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{kind:<14}{med['delivered_pct']:>12.2f}{med['rows_per_s']:>10.0f}{med['jitter_p50_ms']:>15.2f}{med['jitter_p99_ms']:>15.2f}")


if __name__ == "__main__":
    main()
