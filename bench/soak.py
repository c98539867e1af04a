"""Soak: many sessions held open for minutes, a few of them busy, against one runbokeh.

Opens ``--sessions`` sessions of examples/sliders.py (page GET, websocket, PULL-DOC) and holds them
for ``--minutes``; ``--active`` of them move a slider in closed loops the whole time (PATCH-DOC until
the recomputed data and the OK are back). Every ``--every`` seconds it samples the server's RSS and
the p50/p99 of the round trips of that interval, and prints one JSON line; at the end a summary.

    .venv/bin/python bench/soak.py [--sessions 1000] [--active 20] [--minutes 10] [--every 30]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import BokehSession, percentile  # noqa: E402
from run import SLIDERS_APP, _patch_roundtrip, check_sliders_doc, open_session  # noqa: E402
from servers import running  # noqa: E402


async def soak(url: str, pid: int, sessions: int, active: int, minutes: float, every: float) -> dict[str, object]:
    server = psutil.Process(pid)
    rss = lambda: round(server.memory_info().rss / 2**20, 1)  # noqa: E731
    rss_start = rss()
    held: list[BokehSession] = []
    busy: list[tuple[BokehSession, dict[str, object]]] = []
    opened_at = time.perf_counter()
    for index in range(sessions):
        session, reply, _, _ = await open_session(url, "/sliders")
        if index < active:
            busy.append((session, check_sliders_doc(reply)))
        held.append(session)
    open_seconds = time.perf_counter() - opened_at
    rss_open = rss()
    samples: list[dict[str, object]] = []
    trips: list[float] = []
    stop_at = time.monotonic() + minutes * 60

    async def mover(session: BokehSession, info: dict[str, object]) -> None:
        step = 0
        while time.monotonic() < stop_at:
            trips.append(await _patch_roundtrip(session, info, step))
            step += 1

    movers = [asyncio.create_task(mover(session, info)) for session, info in busy]
    started = time.monotonic()
    all_trips: list[float] = []
    while time.monotonic() < stop_at:
        await asyncio.sleep(min(every, max(0.0, stop_at - time.monotonic())))
        interval, trips[:] = list(trips), []
        all_trips.extend(interval)
        sample = {"t_s": round(time.monotonic() - started), "rss_mb": rss(), "round_trips": len(interval),
                  "p50_ms": round(percentile(interval, 50) * 1000, 1), "p99_ms": round(percentile(interval, 99) * 1000, 1)}
        samples.append(sample)
        print(json.dumps(sample), flush=True)
    await asyncio.gather(*movers)
    for session in held:
        await session.close()
    return {"sessions": sessions, "active": active, "minutes": minutes, "open_seconds": round(open_seconds, 1),
            "rss_mb_start": rss_start, "rss_mb_open": rss_open, "rss_mb_end": rss(), "round_trips": len(all_trips),
            "p50_ms": round(percentile(all_trips, 50) * 1000, 1), "p99_ms": round(percentile(all_trips, 99) * 1000, 1),
            "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--active", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0)
    args = parser.parse_args()
    # sessions must outlive the soak: no unused-session expiry (the held ones stay connected anyway)
    with running("bokehserver", [SLIDERS_APP], "/sliders") as server:
        result = asyncio.run(soak(server.url, server.pid, args.sessions, args.active, args.minutes, args.every))
    print(json.dumps({key: value for key, value in result.items() if key != "samples"}, indent=2))


if __name__ == "__main__":
    main()
