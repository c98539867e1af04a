"""CPU of one shared feed (update_sessions) against one periodic callback per session.

Both apps stream one row every 100 ms into every session, after ~1 ms of work per update; the
shared app does that work once per tick, the per-session app once per session per tick. The
server's CPU seconds over the window are read with psutil.

    .venv/bin/python bench/shared_feed.py [--sessions 200] [--seconds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import BokehSession  # noqa: E402
from servers import ROOT, running  # noqa: E402

APPS = {"per-session": ROOT / "bench" / "apps" / "feed_per_session.py", "shared": ROOT / "bench" / "apps" / "feed_shared"}


async def measure(url: str, route: str, pid: int, sessions: int, seconds: float) -> tuple[float, float]:
    clients = [BokehSession(url, route) for _ in range(sessions)]
    for chunk in range(0, sessions, 25):
        await asyncio.gather(*(c.open() for c in clients[chunk:chunk + 25]))
    await asyncio.gather(*(c.pull() for c in clients))
    process = psutil.Process(pid)
    received = [0]

    async def drain(client: BokehSession, end: float) -> None:
        while (remaining := end - time.perf_counter()) > 0:
            try:
                await asyncio.wait_for(client.recv(), remaining)
                received[0] += 1
            except asyncio.TimeoutError:
                return

    cpu0 = sum(process.cpu_times()[:2])
    end = time.perf_counter() + seconds
    await asyncio.gather(*(drain(c, end) for c in clients))
    cpu = sum(process.cpu_times()[:2]) - cpu0
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return cpu, received[0] / (sessions * seconds / 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rows = {}
    for name, app in APPS.items():
        route = "/" + app.stem if app.suffix else "/" + app.name
        with running("bokehserver", [str(app)], route) as server:
            rows[name] = asyncio.run(measure(server.url, route, server.pid, args.sessions, args.seconds))
    print(f"shared feed: {args.sessions} sessions, one update every 100 ms, {args.seconds:.0f} s")
    for name, (cpu, delivered) in rows.items():
        print(f"{name:<12} server CPU {cpu:6.2f} s ({100 * cpu / args.seconds:5.1f} % of a core), updates delivered {100 * delivered:5.1f} %")
    print(f"shared / per-session CPU: {rows['shared'][0] / rows['per-session'][0]:.2f}")


if __name__ == "__main__":
    main()
