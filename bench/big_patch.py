"""A client sends one PATCH-DOC of ~19 MB (under the 20 MiB limit); how long do other sessions stall?

Starts runbokeh on examples/sliders.py. One session (the measurer) moves its slider in a closed loop
(PATCH-DOC until the recomputed data and the OK are back). Another process opens a second session and,
after a baseline, sends a PATCH-DOC that sets the ColumnDataSource's "x" and "y" to ``--points`` floats
each as plain JSON lists (a Python-side list, as a client without typed arrays sends), waits for the OK,
then sends a small patch that puts 200 points back and waits for that OK. Prints the measurer's round
trips before and while the big patch is on its way (p50, p99, max: the worst stall), the big message's
size and time to its OK, and the server's RSS before, right after the OK, once the data is replaced,
and after each of ``--repeat`` more big-then-small pairs (memory kept by the allocator is reused, not grown).

    .venv/bin/python bench/big_patch.py [--points 470000] [--baseline-seconds 3] [--settle-seconds 3] [--repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import trip_summary  # noqa: E402
from run import SLIDERS_APP, _patch_roundtrip, check_sliders_doc, open_session  # noqa: E402
from servers import running  # noqa: E402


def data_patch(source_id: str, xs: list[float], ys: list[float]) -> dict[str, object]:
    new = {"type": "map", "entries": [["x", xs], ["y", ys]]}
    return {"events": [{"kind": "ModelChanged", "model": {"id": source_id}, "attr": "data", "new": new}]}


async def _send_and_wait(session, content: str) -> tuple[float, str]:
    """Send a PATCH-DOC whose content is already JSON text; return (seconds until the reply, its msgtype)."""
    msgid = f"big{random.randrange(10**9)}"
    start = time.perf_counter()
    await session.ws.send(json.dumps({"msgid": msgid, "msgtype": "PATCH-DOC"}))
    await session.ws.send("{}")
    await session.ws.send(content)
    while True:
        message = await asyncio.wait_for(session.recv(), 120)
        if message.header.get("reqid") == msgid:
            return time.perf_counter() - start, message.msgtype


def sender(url: str, points: int, pipe) -> None:
    """In its own process: build the big patch text, then on "go" send it, then put small data back."""

    async def main() -> None:
        session, reply, _, _ = await open_session(url, "/sliders")
        source = check_sliders_doc(reply)["source"]
        rng = random.Random(1)
        big = json.dumps(data_patch(source, [rng.random() for _ in range(points)], [rng.random() for _ in range(points)]))
        small = json.dumps(data_patch(source, [i / 10 for i in range(200)], [0.0] * 200))
        pipe.send({"bytes": len(big.encode())})
        pipe.recv()  # go
        seconds, kind = await _send_and_wait(session, big)
        pipe.send({"big_reply_s": round(seconds, 3), "big_reply": kind})
        pipe.recv()  # put small data back
        seconds, kind = await _send_and_wait(session, small)
        pipe.send({"small_reply_s": round(seconds, 3), "small_reply": kind})
        while pipe.recv() == "again":  # the same pair once more: does memory grow, or is it reused?
            await _send_and_wait(session, big)
            await _send_and_wait(session, small)
            pipe.send("done")
        await session.close()

    asyncio.run(main())


async def measure(url: str, pid: int, points: int, baseline_seconds: float, settle_seconds: float,
                  repeat: int) -> dict[str, object]:
    server = psutil.Process(pid)
    rss = lambda: round(server.memory_info().rss / 2**20, 1)  # noqa: E731
    session, reply, _, _ = await open_session(url, "/sliders")
    info = check_sliders_doc(reply)
    loop = asyncio.get_running_loop()
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=sender, args=(url, points, theirs), daemon=True)
    process.start()
    result: dict[str, object] = {"points": points, **await loop.run_in_executor(None, ours.recv)}
    step = 0

    async def trips_while(running_: asyncio.Future | None, seconds: float = 0.0) -> list[float]:
        nonlocal step
        trips: list[float] = []
        until = time.monotonic() + seconds
        while (running_ is not None and not running_.done()) or time.monotonic() < until:
            started = time.monotonic()
            trips.append(await _patch_roundtrip(session, info, step))
            starts.append(started)
            step += 1
        return trips

    starts: list[float] = []
    before = await trips_while(None, baseline_seconds)
    result["rss_mb_before"] = rss()
    ours.send("go")
    go = time.monotonic()
    waiting = loop.run_in_executor(None, ours.recv)
    starts.clear()
    during = await trips_while(waiting)
    worst = max(range(len(during)), key=during.__getitem__)
    result["worst_stall_began_s_after_send"] = round(starts[worst] - go, 3)
    result.update(waiting.result())
    result["rss_mb_after_ok"] = rss()
    ours.send("small")
    waiting = loop.run_in_executor(None, ours.recv)
    await trips_while(waiting)
    result.update(waiting.result())
    await trips_while(None, settle_seconds)
    result["rss_mb_after_small_data"] = rss()
    again = []
    for _ in range(repeat):
        ours.send("again")
        await loop.run_in_executor(None, ours.recv)
        again.append(rss())
    result["rss_mb_after_each_repeat"] = again
    ours.send("done")
    process.join(60)
    await session.close()
    return {**result, "before": trip_summary(before), "during": trip_summary(during)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=470_000)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--settle-seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3, help="send the big and small patches this many times more")
    args = parser.parse_args()
    with running("bokehserver", [SLIDERS_APP], "/sliders") as server:
        result = asyncio.run(measure(server.url, server.pid, args.points, args.baseline_seconds, args.settle_seconds,
                                           args.repeat))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
