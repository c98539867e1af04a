"""Many sessions held open: garbage-collection pauses and the round trips of the few busy ones.

Two scenarios of bench/run.py live here:

- ``gc``: in-process (no server exposes its collector's pauses to a client). A fresh process sets up
  Django, builds N sliders sessions as bokehserver serves them (startup objects frozen first), moves a
  slider of 20 of them ``--updates`` times under the session lock, and reports a whole collection's
  pause (``gc.collect()``, median of 5), the longest collection of each generation seen meanwhile
  (``gc.callbacks``; bokehserver's own collections before each freeze included) and the objects a
  whole collection walks. Pauses are the thread's CPU time (the machine is shared: wall time
  counts the other processes' turns too); the whole collection's wall time is reported beside it. bokeh serve's column is the
  same with bokeh's own model internals and nothing frozen (what a bokeh serve process walks).
- ``held``: against a real server, 20 sessions move a slider in closed loops (PATCH-DOC until the
  recomputed data and the OK are back, checked) with only them open, then again with N sessions
  open: the p99 of each and their ratio.

    .venv/bin/python bench/held.py --gc-variant bokehserver --sessions 1000   # one in-process gc measurement
    .venv/bin/python bench/held.py --churn 30 --sessions 100   # memory over build/expire cycles, in-process
    .venv/bin/python bench/held.py --server-churn 12 --sessions 96   # the same against a runbokeh (its RSS)
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import PYTHON, ROOT, server_root  # noqa: E402

ACTIVE = 20
OPEN_CHUNK = 8
GC_NOTE = ("gc: in-process only (no server shows a client its collector's pauses). bokehserver = sessions built "
           "as it serves them; bokeh serve = the same sessions with bokeh's own model internals and nothing frozen, "
           "what a bokeh serve process walks.")


# --------------------------------------------------------------------------------------------------
# gc: in-process


def gc_scenario(kind: str, sessions: int, updates: int, check_failed: type[Exception]) -> dict[str, float]:
    """Runs this file's in-process measurement in a fresh interpreter, importing bokehserver from the served tree."""
    variant = "bokehserver" if kind.startswith("bokehserver") else "bokeh-models"
    root = server_root()
    command = [PYTHON, str(Path(__file__).resolve()), "--gc-variant", variant, "--sessions", str(sessions),
               "--updates", str(updates), "--root", str(root)]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=900, env=env)
    if done.returncode != 0:
        raise check_failed(f"held.py --gc-variant {variant} failed:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures.pop("checked_updates") != updates:
        raise check_failed("the slider updates did not all recompute the data")
    return figures


async def _gc_measure(variant: str, sessions: int, updates: int) -> dict[str, float]:
    import django
    import numpy as np

    gc.unfreeze()
    gc.collect()
    django.setup()
    from bokehserver import heap
    from bokehserver._compat import bokehs_own_models
    from bokehserver.application_context import ApplicationContext
    from bokehserver.registry import build_application

    longest = [0.0, 0.0, 0.0]
    counts = [0, 0, 0]
    started: list[float] = []

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.thread_time())
        elif started:
            generation = info["generation"]
            longest[generation] = max(longest[generation], time.thread_time() - started.pop())
            counts[generation] += 1

    if variant == "bokehserver":
        heap.freeze_startup_objects()
    context = ApplicationContext(build_application(str(ROOT / "examples" / "sliders.py")), url="/bench")
    gc.callbacks.append(watch)
    with bokehs_own_models() if variant == "bokeh-models" else contextlib.nullcontext():
        built = []
        for i in range(sessions):
            built.append(await context.create_session_if_needed(f"s{i}"))
        heap.freeze_pending()  # what a running server does a second after the last build
        checked = 0
        active = built[:ACTIVE]
        built_gen2 = (longest[2], counts[2])
        longest[2], counts[2] = 0.0, 0
        for step in range(updates):
            session = active[step % len(active)]
            doc = session.document
            amplitude = 1.0 + (step % 40) / 10.0

            def move(doc: Any = doc, value: float = amplitude) -> None:
                doc.select_one({"name": "amplitude"}).value = value

            await session.with_document_locked(move)
            source = doc.select_one({"name": "source"})
            if np.allclose(source.data["y"], amplitude * np.sin(source.data["x"])):
                checked += 1
    gc.callbacks.remove(watch)
    gc.collect()
    pauses, walls = [], []
    for _ in range(5):
        start, wall = time.thread_time(), time.perf_counter()
        gc.collect()
        pauses.append(time.thread_time() - start)
        walls.append(time.perf_counter() - wall)
    figures = {
        "full_ms": statistics.median(pauses) * 1e3,
        "full_wall_ms": statistics.median(walls) * 1e3,
        "walked": float(len(gc.get_objects())),
        "auto_gen0_ms": longest[0] * 1e3, "auto_gen1_ms": longest[1] * 1e3,
        "auto_gen2_ms": max(built_gen2[0], longest[2]) * 1e3, "auto_gen2_count": float(built_gen2[1] + counts[2]),
        "updates_gen2_ms": longest[2] * 1e3, "updates_gen2_count": float(counts[2]),
        "checked_updates": checked,
    }
    await context.worker.stop(timeout=1.0)
    return figures


# --------------------------------------------------------------------------------------------------
# held: against a server


async def held_measure(url: str, held: int, seconds: float, open_session: Callable[..., Any],
                       check_doc: Callable[..., Any], roundtrip: Callable[..., Any], percentile: Callable[..., float],
                       close_all: Callable[..., Any], server_cpu: Callable[[], float]) -> dict[str, float]:
    """Round trips of ACTIVE sessions in closed loops, with only them open, then with ``held`` open.

    Besides p50/p99: the longest round trip (a full collection of the server shows there first)
    and the server's CPU per round trip, which other processes on the machine do not inflate.
    """
    sessions: list[Any] = []
    infos: list[dict[str, Any]] = []
    steps = [0] * ACTIVE

    async def open_more(count: int) -> None:
        for chunk in range(0, count, OPEN_CHUNK):
            opened = await asyncio.gather(*(open_session(url, "/sliders") for _ in range(min(OPEN_CHUNK, count - chunk))))
            for session, reply, _, _ in opened:
                info = check_doc(reply)
                sessions.append(session)
                infos.append(info)

    async def loops() -> tuple[list[float], float]:
        times: list[float] = []
        end = time.perf_counter() + seconds
        cpu = server_cpu()

        async def loop(i: int) -> None:
            while time.perf_counter() < end:
                steps[i] += 1
                times.append(await roundtrip(sessions[i], infos[i], steps[i]))

        await asyncio.gather(*(loop(i) for i in range(ACTIVE)))
        return times, (server_cpu() - cpu) / len(times)

    try:
        await open_more(ACTIVE)
        for i in range(ACTIVE):  # warm up: first patch paths, imports, caches
            for _ in range(2):
                steps[i] += 1
                await roundtrip(sessions[i], infos[i], steps[i])
        few, few_cpu = await loops()
        await open_more(held - ACTIVE)
        many, many_cpu = await loops()
    finally:
        await close_all(sessions)
    few_p99, many_p99 = percentile(few, 99) * 1e3, percentile(many, 99) * 1e3
    return {
        "few_p50": percentile(few, 50) * 1e3, "few_p99": few_p99, "few_max": max(few) * 1e3, "few_cpu": few_cpu * 1e3,
        "many_p50": percentile(many, 50) * 1e3, "many_p99": many_p99, "many_max": max(many) * 1e3,
        "many_cpu": many_cpu * 1e3,
        "p99_ratio": many_p99 / few_p99, "cpu_ratio": many_cpu / few_cpu,
    }


async def _churn(cycles: int, sessions: int) -> None:
    """Build and expire ``sessions`` sliders sessions ``cycles`` times as served; one JSON line per cycle."""
    import django
    import psutil

    django.setup()
    from bokehserver import heap
    from bokehserver.application_context import ApplicationContext
    from bokehserver.registry import build_application

    heap.freeze_startup_objects()
    context = ApplicationContext(build_application(str(ROOT / "examples" / "sliders.py")), url="/bench")
    process = psutil.Process()
    for cycle in range(cycles):
        for i in range(sessions):
            session = await context.create_session_if_needed(f"c{cycle}-{i}")
            session.request_expiration()
        await context.cleanup_sessions(15000)
        if context.sessions:
            raise SystemExit("sessions left after the cleanup")
        print(json.dumps({"cycle": cycle + 1, "rss_mb": round(process.memory_info().rss / 2**20, 1),
                          "frozen": gc.get_freeze_count(), "walked": len(gc.get_objects()), **heap.stats()}), flush=True)
    await context.worker.stop(timeout=1.0)


def server_churn(cycles: int, sessions: int) -> None:
    """Open and close ``sessions`` sessions of one runbokeh ``cycles`` times (expiring 0.5 s after); its RSS each time."""
    import psutil
    from run import SLIDERS_APP, check_sliders_doc, close_all, open_session
    from servers import free_port

    root, port = server_root(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
    command = [PYTHON, str(root / "manage.py"), "runbokeh", SLIDERS_APP, "--port", str(port), "--address", "127.0.0.1",
               f"--allow-websocket-origin=127.0.0.1:{port}", "--log-level", "warning",
               "--unused-session-lifetime", "500", "--check-unused-sessions", "300"]
    server = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def churn() -> None:
        while True:
            try:
                await asyncio.wait_for(open_session(url, "/sliders"), 2.0)
                break
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.2)
        process = psutil.Process(server.pid)
        for cycle in range(cycles):
            opened = []
            for chunk in range(0, sessions, OPEN_CHUNK):
                for session, reply, _, _ in await asyncio.gather(
                        *(open_session(url, "/sliders") for _ in range(min(OPEN_CHUNK, sessions - chunk)))):
                    check_sliders_doc(reply)
                    opened.append(session)
            await close_all(opened)
            await asyncio.sleep(2.5)  # expired after 0.5 s, checked every 0.3 s
            print(json.dumps({"cycle": cycle + 1, "rss_mb": round(process.memory_info().rss / 2**20, 1)}), flush=True)

    try:
        asyncio.run(churn())
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gc-variant", choices=("bokehserver", "bokeh-models"))
    parser.add_argument("--churn", type=int, metavar="CYCLES", help="build and expire --sessions sessions CYCLES times")
    parser.add_argument("--server-churn", type=int, metavar="CYCLES",
                        help="open and close --sessions sessions of a runbokeh (BENCH_SERVER_ROOT) CYCLES times")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree to import bokehserver from")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    if args.server_churn:
        server_churn(args.server_churn, args.sessions)
    elif args.churn:
        asyncio.run(_churn(args.churn, args.sessions))
    elif args.gc_variant:
        print(json.dumps(asyncio.run(_gc_measure(args.gc_variant, args.sessions, args.updates))))
    else:
        parser.error("--gc-variant, --churn or --server-churn")


if __name__ == "__main__":
    main()
