"""Panning a plot: the PATCH-DOCs BokehJS sends while a user drags, which no Python code listens to.

N sessions of the sliders app (8 by default) each move their plot's x range (``start`` and ``end``
in one PATCH-DOC, as BokehJS sends them during a pan) in closed loops, waiting for the OK. Reports
server CPU per patch and patches per second, per server kind, and for bokehserver per tree when
``--roots`` names several (before/after, served in turn from the same venv).

    python bench/pan.py [--runs 3] [--sessions 8] [--seconds 5] [--servers "bokehserver,bokeh serve"]
    python bench/pan.py --roots /tmp/before,. --servers bokehserver
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import BokehSession, model_by_name  # noqa: E402
from run import REPLY_TIMEOUT_S, SLIDERS_APP, CheckFailed, open_session  # noqa: E402
from servers import ROOT, running  # noqa: E402


async def _pan(session: BokehSession, range_id: str, step: int) -> None:
    start = (step % 100) / 10.0
    msgid = await session.send("PATCH-DOC", {"events": [
        {"kind": "ModelChanged", "model": {"id": range_id}, "attr": "start", "new": start},
        {"kind": "ModelChanged", "model": {"id": range_id}, "attr": "end", "new": start + 4.0},
    ]})
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        while True:
            message = await session.recv()
            if message.header.get("reqid") == msgid:
                if message.msgtype != "OK":
                    raise CheckFailed(f"PATCH-DOC answered {message.msgtype}: {message.content}")
                return


async def closed_loops(url: str, pid: int, sessions: int, seconds: float) -> dict[str, float]:
    opened: list[tuple[BokehSession, str]] = []
    try:
        for _ in range(sessions):
            session, reply, _, _ = await open_session(url, "/sliders", track_arrivals=False)
            plot = model_by_name(reply.content["doc"], "plot")
            opened.append((session, plot["attributes"]["x_range"]["id"]))
        for step, (session, range_id) in enumerate(opened):
            await _pan(session, range_id, step)
        count, end = 0, time.perf_counter() + seconds

        async def loop(i: int) -> None:
            nonlocal count
            session, range_id = opened[i]
            while time.perf_counter() < end:
                count += 1
                await _pan(session, range_id, count)

        process = psutil.Process(pid)
        before, started = process.cpu_times(), time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(sessions)))
        elapsed, after = time.perf_counter() - started, process.cpu_times()
        cpu = after.user + after.system - before.user - before.system
        return {"rate": count / elapsed, "cpu_ms": 1000.0 * cpu / count}
    finally:
        await asyncio.gather(*(session.close() for session, _ in opened), return_exceptions=True)


def measure(kind: str, root: str, sessions: int, seconds: float) -> dict[str, float]:
    if root:
        os.environ["BENCH_SERVER_ROOT"] = str(Path(root).resolve())
    else:
        os.environ.pop("BENCH_SERVER_ROOT", None)
    with running(kind, [SLIDERS_APP], "/sliders") as server:
        return asyncio.run(closed_loops(server.url, server.pid, sessions, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--servers", default="bokehserver,bokeh serve")
    parser.add_argument("--roots", default="", help="comma-separated trees to serve bokehserver from, in turn")
    args = parser.parse_args()
    roots = [r.strip() for r in args.roots.split(",") if r.strip()] or [""]
    roots = ["" if r and Path(r).resolve() == ROOT else r for r in roots]
    columns: list[tuple[str, str]] = []
    for kind in (k.strip() for k in args.servers.split(",")):
        columns += [(kind, root) for root in roots] if kind == "bokehserver" else [(kind, "")]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for index in range(args.runs):
        for column in columns if index % 2 == 0 else columns[::-1]:
            figures = measure(*column, args.sessions, args.seconds)
            results.setdefault(column, []).append(figures)
            print(f"[pan] run {index + 1}/{args.runs} {column[0]} {column[1] or ''}: "
                  f"{figures['rate']:.0f} patches/s, {figures['cpu_ms']:.3f} ms of server CPU each", file=sys.stderr, flush=True)
    print(f"| {args.sessions} sessions panning | patches/s | server CPU per patch, ms |\n|---|---|---|")
    for (kind, root), runs in results.items():
        rates, cpus = [r["rate"] for r in runs], [r["cpu_ms"] for r in runs]
        print(f"| {kind}{' ' + root if root else ''} | {statistics.median(rates):.0f} [{min(rates):.0f}-{max(rates):.0f}] "
              f"| {statistics.median(cpus):.3f} [{min(cpus):.3f}-{max(cpus):.3f}] |")


if __name__ == "__main__":
    main()
