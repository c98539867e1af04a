"""What a second worker process buys: ``runbokeh --num-procs 1`` against ``--num-procs 2`` on one port.

N sessions of the sliders app (32 by default) move their slider in closed loops (each waits for
the recomputed data and the OK before the next move) for a few seconds; pages and websockets land
on whichever worker the kernel picks. Needs Redis (more than one worker needs a shared channel
layer). Reported per worker count: round trips/s, the servers' CPU (supervisor and workers), the
bench client's CPU (it shares the machine's cores), Redis's CPU and commands per round trip (a
websocket relayed between workers costs Redis work on every message; other users of the same
Redis are counted too), and the load average.

    python bench/procs.py [--runs 3] [--sessions 32] [--seconds 6] [--on-loop] [--client node|python]
    python bench/procs.py --roots /tmp/before,.      # alternate two trees (before/after), same venv

The sessions run in ``bench/patch_client.mjs`` under Node.js where ``node`` is installed (``--client
node``, the default there) and in this process otherwise (``--client python``, bench/client.py). The
client shares the servers' two cores, so its CPU per round trip bounds what a second worker can
add: the Python client spends about two fifths of a worker's CPU per round trip, the Node.js
client about a sixth, with the same checks of every reply.

``bench/run.py --scenarios procs`` runs the same measurement (tiny under ``--quick``).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import SLIDERS_APP, _patch_roundtrip, check_sliders_doc, open_session  # noqa: E402
from servers import PYTHON, ROOT, running  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
NODE = shutil.which("node")
FIGURES = (
    ("rate", "round trips/s", 0),
    ("server_cpu", "servers' CPU, % of a core", 0),
    ("busiest", "busiest process's CPU, % of a core", 0),
    ("server_ms", "servers' CPU per round trip, ms", 3),
    ("client_cpu", "bench client's CPU, % of a core", 0),
    ("redis_ms", "Redis CPU per round trip, ms", 3),
    ("redis_commands", "Redis commands per round trip", 2),
    ("load", "load average (1 min) at the end", 1),
)


def redis_available(url: str = REDIS_URL) -> str | None:
    """None when a Redis server answers at ``url``, else why not."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"no Redis at {url} ({type(exc).__name__}: {exc})"
    return None


def redis_usage(url: str) -> tuple[float, int]:
    """Redis's CPU seconds and commands processed so far (INFO)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        cpu, stats = client.info("cpu"), client.info("stats")
    finally:
        client.close()
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), int(stats["total_commands_processed"])


def migrated_database() -> str:
    """A fresh SQLite file with the project's tables, for the session records."""
    path = Path(tempfile.mkdtemp(prefix="bench-procs-")) / "db.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "BOKEHSERVER_DB": str(path)}
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    return str(path)


@functools.lru_cache(maxsize=None)
def database() -> str:
    """A migrated SQLite file for the session records, one per bench process."""
    return migrated_database()


def cpu_by_process(pid: int) -> dict[int, float]:
    """CPU seconds used so far by the server process and each of its descendants (the workers), by pid."""
    used = {}
    for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        times = process.cpu_times()
        used[process.pid] = times.user + times.system
    return used


@dataclasses.dataclass
class Usage:
    """What the servers and Redis had used at one moment: the two ends of a measurement."""

    servers: dict[int, float]
    redis_cpu: float
    redis_commands: int

    @classmethod
    def now(cls, pid: int, redis_url: str) -> Usage:
        return cls(cpu_by_process(pid), *redis_usage(redis_url))


def usage_figures(before: Usage, after: Usage, count: int, elapsed: float, client_seconds: float) -> dict[str, float]:
    """The table's figures for ``count`` round trips in ``elapsed`` seconds between two usages."""
    used = {pid: seconds - before.servers.get(pid, 0.0) for pid, seconds in after.servers.items()}
    server_seconds = sum(used.values())
    return {
        "rate": count / elapsed,
        "server_cpu": 100 * server_seconds / elapsed,
        "busiest": 100 * max(used.values()) / elapsed,
        "server_ms": 1000 * server_seconds / count,
        "client_cpu": 100 * client_seconds / elapsed,
        "redis_ms": 1000 * (after.redis_cpu - before.redis_cpu) / count,
        "redis_commands": (after.redis_commands - before.redis_commands) / count,
        "load": os.getloadavg()[0],
    }


def wait_for_workers(pid: int, count: int, timeout: float = 60.0) -> None:
    """Until ``count`` workers run and have gone quiet (imported the app, frozen their startup heap).

    The ready check reaches only one worker; a worker still starting would stall the sessions it gets.
    """
    deadline = time.monotonic() + timeout
    while True:
        workers = psutil.Process(pid).children() if count > 1 else [psutil.Process(pid)]
        if len(workers) >= count:
            before = [w.cpu_times() for w in workers]
            time.sleep(0.5)
            busy = [sum(w.cpu_times()[:2]) - sum(b[:2]) for w, b in zip(workers, before)]
            if max(busy) < 0.05:  # under 10 % of a core each
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} workers did not start and settle within {timeout:g} s")
        time.sleep(0.1)


async def closed_loops(url: str, pid: int, sessions: int, seconds: float, redis_url: str) -> dict[str, float]:
    opened = []
    for _ in range(sessions):
        session, reply, _, _ = await open_session(url, "/sliders", track_arrivals=False)
        opened.append((session, check_sliders_doc(reply)))
    steps = [0] * sessions
    try:
        for i, (session, info) in enumerate(opened):
            steps[i] += 1
            await _patch_roundtrip(session, info, steps[i])
        count = 0
        end = time.perf_counter() + seconds

        async def loop(i: int) -> None:
            nonlocal count
            session, info = opened[i]
            while time.perf_counter() < end:
                steps[i] += 1
                await _patch_roundtrip(session, info, steps[i])
                count += 1

        before = Usage.now(pid, redis_url)
        started, client_cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(loop(i) for i in range(sessions)))
        elapsed = time.perf_counter() - started
        client_seconds = time.process_time() - client_cpu
        return usage_figures(before, Usage.now(pid, redis_url), count, elapsed, client_seconds)
    finally:
        await asyncio.gather(*(session.close() for session, _ in opened), return_exceptions=True)


async def node_loops(url: str, pid: int, sessions: int, seconds: float, redis_url: str) -> dict[str, float]:
    """The same closed loops run by ``bench/patch_client.mjs`` under Node.js, which costs the shared cores less."""
    client = await asyncio.create_subprocess_exec(
        NODE, str(Path(__file__).resolve().parent / "patch_client.mjs"), "--url", url, "--sessions", str(sessions),
        "--seconds", str(seconds), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert client.stdin is not None and client.stdout is not None
    line = b""
    try:
        if "ready" not in json.loads(await client.stdout.readline() or "{}"):
            raise RuntimeError("bench/patch_client.mjs did not open its sessions (its error is above)")
        before = Usage.now(pid, redis_url)
        client.stdin.write(b"go\n")
        await client.stdin.drain()
        line = await client.stdout.readline()
        after = Usage.now(pid, redis_url)
    finally:
        if not line and client.returncode is None:  # failed here: the client would wait for "go" forever
            client.kill()
        await client.wait()
    if client.returncode != 0 or not line:
        raise RuntimeError(f"bench/patch_client.mjs failed (exit code {client.returncode}; its error is above)")
    result = json.loads(line)
    return usage_figures(before, after, result["round_trips"], result["seconds"], result["cpu_seconds"])


def measure(procs: int, sessions: int, seconds: float, redis_url: str = REDIS_URL, on_loop: bool = False,
            client: str = "python") -> dict[str, float]:
    """One runbokeh ``--num-procs procs`` on a Redis channel layer, its sessions patching in closed loops."""
    extra = ["--app-code-threads", "0"] if on_loop else []
    env = {"BOKEHSERVER_REDIS_URL": redis_url, "BOKEHSERVER_DB": database()}
    loops = node_loops if client == "node" else closed_loops
    with running("bokehserver", [*extra, "--num-procs", str(procs), SLIDERS_APP], "/sliders", env) as server:
        wait_for_workers(server.pid, procs)
        return asyncio.run(loops(server.url, server.pid, sessions, seconds, redis_url))


def default_client() -> str:
    """``node`` where Node.js is installed (its client leaves the servers more of the shared cores), else ``python``."""
    return "node" if NODE else "python"


def summary(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def table(results: dict[tuple[str, int], list[dict[str, float]]], labels: list[str]) -> list[str]:
    """Medians [min-max] per worker count (and tree), and the 2/1 ratio of the medians of round trips/s."""
    columns = [(label, procs) for label in labels for procs in (1, 2)]
    heads = [f"{label + ': ' if len(labels) > 1 else ''}--num-procs {procs}" for label, procs in columns]
    lines = ["| figure | " + " | ".join(heads) + " |", "|---|" + "---|" * len(columns)]
    for key, name, digits in FIGURES:
        cells = [summary([r[key] for r in results[column]], digits) if results.get(column) else "-" for column in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for label in labels:
        one, two = results.get((label, 1)), results.get((label, 2))
        if one and two:
            ratios = [b["rate"] / a["rate"] for a, b in zip(one, two)]
            ratio = statistics.median(r["rate"] for r in two) / statistics.median(r["rate"] for r in one)
            lines.append(f"{label + ': ' if len(labels) > 1 else ''}2 workers / 1 worker, round trips/s: {ratio:.2f}x "
                         f"(per run: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 1.6x)")
    return lines


def compare(roots: list[str], runs: int, sessions: int, seconds: float, on_loop: bool = False,
            report: Any = print, client: str = "python") -> list[str]:
    """Measure 1 and 2 workers of each tree in ``roots``, alternating the order run by run."""
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    labels = [root or "work tree" for root in roots]
    for index in range(runs):
        order = [(root, procs) for root in roots for procs in (1, 2)]
        for root, procs in order if index % 2 == 0 else order[::-1]:
            if root:
                os.environ["BENCH_SERVER_ROOT"] = str(Path(root).resolve())
            else:
                os.environ.pop("BENCH_SERVER_ROOT", None)
            figures = measure(procs, sessions, seconds, on_loop=on_loop, client=client)
            results.setdefault((root or "work tree", procs), []).append(figures)
            report(f"[procs] run {index + 1}/{runs} {root or 'work tree'} --num-procs {procs}: "
                   + ", ".join(f"{k}={v:.3g}" for k, v in figures.items()))
    return table(results, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--on-loop", action="store_true", help="run app code on the event loop (no thread pool)")
    parser.add_argument("--client", choices=("node", "python"), default=default_client(),
                        help="the sessions' client: bench/patch_client.mjs under Node.js (the default where node is "
                             "on PATH: about 40 %% of the Python client's CPU per round trip) or bench/client.py")
    parser.add_argument("--roots", default="", help="comma-separated trees to serve bokehserver from, alternating "
                                                   "(default: BENCH_SERVER_ROOT or this checkout)")
    args = parser.parse_args()
    why = redis_available()
    if why is not None:
        raise SystemExit(f"bench/procs.py needs Redis: {why}")
    roots = [r.strip() for r in args.roots.split(",") if r.strip()] or [os.environ.get("BENCH_SERVER_ROOT", "")]
    roots = ["" if r and Path(r).resolve() == ROOT else r for r in roots]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {args.sessions} sessions, "
          f"{args.seconds:g} s per measurement, {args.runs} runs, client: {args.client}", flush=True)
    for line in compare(roots, args.runs, args.sessions, args.seconds, args.on_loop,
                        report=lambda text: print(text, file=sys.stderr, flush=True), client=args.client):
        print(line)


if __name__ == "__main__":
    main()
