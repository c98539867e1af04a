"""bokehserver against bokeh serve: every scenario, several alternating runs, one table.

    .venv/bin/python bench/run.py                       # the full run (~30 min on 2 cores)
    .venv/bin/python bench/run.py --quick               # tiny settings, < 60 s (what tests/test_bench.py runs)
    .venv/bin/python bench/run.py --scenarios open,patch --runs 5
    .venv/bin/python bench/run.py --servers "bokehserver,bokeh serve,bokeh-django"
    .venv/bin/python bench/run.py --profile /tmp/prof --runs 1 --servers bokehserver
    .venv/bin/python bench/run.py --snapshot HEAD       # serve bokehserver from `git archive HEAD`, not the work tree

Each measurement gets a fresh server process (so sessions left by one cannot expire in the middle of
another), and the servers take turns: run 1 measures A then B, run 2 B then A, and so on. A figure
in the table is the median over the runs, with the min-max over runs in brackets; the ratio is
ours / bokeh serve of the medians. Every scenario checks what the server sends back (the document
it pulls, the recomputed data of a patch, the rows it streams), so a server that answers wrongly
fails instead of scoring.

Scenarios (names for --scenarios):
  open    page GET + websocket + ACK + PULL-DOC of examples/sliders.py, sequential and N concurrent
  patch   a slider PATCH-DOC until the recomputed data PATCH-DOC and the OK are back, closed loops
  stream  N sessions streaming 10 rows every 50 ms (bench/stream.py's measure()); then with the server
          pinned to one core, alone and sharing it with busy processes (saturated: the overload policy)
  memory  server RSS per open session (sliders app)
  big     PULL-DOC of a 2,000-model document and of a 100,000-point source, with and without a
          150 ms pause after the page GET, and the full open
  fanout  one session with 2 sockets and one with N: how much longer a patch takes to reach all N-1
          other sockets than the single other one (the cost per extra connection)
  expire  event-loop stall while 200 closed sessions expire (in-process, bench/expire_sessions.py)
  procs   runbokeh --num-procs 1 against 2 on Redis, 32 sessions patching: round trips/s, servers', client's
          and Redis's CPU (bench/procs.py; bokehserver only, skipped with a note without Redis; the sessions
          run in bench/patch_client.mjs where Node.js is installed, else in this process)
  gc      garbage-collection pauses with 1,000 sliders sessions open (in-process, bench/held.py)
  held    p99 round trip of 20 busy sessions with only them open and with 1,000 open (bench/held.py)
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import (  # noqa: E402
    BokehSession,
    Message,
    count_models,
    decode_array,
    map_entries,
    model_by_name,
    percentile,
)
from servers import OUR_KINDS, PYTHON, ROOT, RunningServer, available, running, server_root  # noqa: E402
import held as held_bench  # noqa: E402
from stream import APP as STREAM_APP  # noqa: E402
from stream import measure as stream_measure  # noqa: E402
from stream import pinned as stream_pinned  # noqa: E402

OURS, THEIRS, BOKEH_DJANGO = "bokehserver", "bokeh serve", "bokeh-django"
SLIDERS_APP = str(ROOT / "examples" / "sliders.py")
BIG_MODELS_APP = str(ROOT / "bench" / "apps" / "big_models.py")
BIG_POINTS_APP = str(ROOT / "bench" / "apps" / "big_points.py")
BIG_MODELS_COUNT = 2000
BIG_POINTS_COUNT = 100_000
BROWSER_PAUSE_S = 0.150
REPLY_TIMEOUT_S = 60.0
SCENARIOS = ("open", "patch", "stream", "memory", "big", "fanout", "expire", "gc", "held", "procs")


class CheckFailed(Exception):
    """A server's reply was not what the scenario expects: the server does not score."""


# --------------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Config:
    runs: int
    open_sequential: int
    open_workers: int
    open_per_worker: int
    patch_sessions: tuple[int, ...]
    patch_seconds: float
    stream_sessions: tuple[int, ...]
    stream_seconds: float
    stream_runs: int
    stream_pinned: tuple[tuple[int, int], ...]  # (sessions, busy processes on the server's core)
    memory_sessions: tuple[int, ...]
    big_samples: int
    fanout_connections: int
    fanout_patches: int
    expire_sessions: int
    procs_sessions: int = 32
    procs_seconds: float = 5.0
    gc_sessions: int = 1000
    gc_updates: int = 2000
    held_sessions: int = 1000
    held_seconds: float = 10.0


FULL = Config(
    runs=3,
    open_sequential=40, open_workers=8, open_per_worker=10,
    patch_sessions=(1, 8, 32), patch_seconds=3.0,
    stream_sessions=(10, 50), stream_seconds=20.0, stream_runs=2, stream_pinned=((50, 0), (50, 3)),
    memory_sessions=(50, 200),
    big_samples=3,
    fanout_connections=20, fanout_patches=30,
    expire_sessions=200,
)
QUICK = Config(
    runs=1,
    open_sequential=4, open_workers=2, open_per_worker=2,
    patch_sessions=(1, 2, 4), patch_seconds=0.4,
    stream_sessions=(2, 4), stream_seconds=1.0, stream_runs=1, stream_pinned=((4, 1),),
    memory_sessions=(3, 6),
    big_samples=1,
    fanout_connections=4, fanout_patches=3,
    expire_sessions=10,
    procs_sessions=4, procs_seconds=0.5,
    gc_sessions=20, gc_updates=40,
    held_sessions=30, held_seconds=0.4,
)


# --------------------------------------------------------------------------------------------------
# content checks


def check_sliders_doc(reply: Message) -> dict[str, Any]:
    """The pulled sliders document: title, slider values, 200 points of y = sin(x). Returns ids and x."""
    doc = reply.content.get("doc")
    if not isinstance(doc, dict):
        raise CheckFailed("PULL-DOC-REPLY without a document")
    if doc.get("title") != "Sliders":
        raise CheckFailed(f"pulled document title is {doc.get('title')!r}, not 'Sliders'")
    try:
        amplitude = model_by_name(doc, "amplitude")
        source = model_by_name(doc, "source")
    except KeyError as exc:
        raise CheckFailed(f"pulled sliders document has no model named {exc}") from None
    data = map_entries(source["attributes"]["data"])
    x = decode_array(data["x"], reply.buffer_map)
    y = decode_array(data["y"], reply.buffer_map)
    if x.shape != (200,) or not np.allclose(y, np.sin(x), rtol=1e-9, atol=1e-12):
        raise CheckFailed("pulled sliders source is not 200 points of y = sin(x)")
    return {"amplitude": amplitude["id"], "source": source["id"], "x": np.array(x),
            "value": amplitude["attributes"].get("value")}


def check_big_models_doc(reply: Message) -> None:
    doc = reply.content.get("doc") or {}
    found = count_models(doc.get("roots", []))  # the document's own config models are not the app's
    if found != BIG_MODELS_COUNT:
        raise CheckFailed(f"big_models document has {found} models, expected {BIG_MODELS_COUNT}")
    for name in ("w0", f"w{BIG_MODELS_COUNT - 41}"):
        try:
            model_by_name(doc, name)
        except KeyError:
            raise CheckFailed(f"big_models document lacks widget {name}") from None


def check_big_points_doc(reply: Message) -> None:
    doc = reply.content.get("doc") or {}
    try:
        source = model_by_name(doc, "source")
    except KeyError:
        raise CheckFailed("big_points document has no source") from None
    data = map_entries(source["attributes"]["data"])
    x = decode_array(data["x"], reply.buffer_map)
    y = decode_array(data["y"], reply.buffer_map)
    expected_x = np.arange(BIG_POINTS_COUNT, dtype=np.float64)
    if x.shape != (BIG_POINTS_COUNT,) or not np.array_equal(x, expected_x):
        raise CheckFailed("big_points x column is not 0..99999")
    if not np.allclose(y, np.sin(expected_x / 1000.0), rtol=1e-12, atol=1e-12):
        raise CheckFailed("big_points y column is not sin(x / 1000)")


def data_change(message: Message, source_id: str) -> dict[str, Any] | None:
    """The new ``data`` of ``source_id`` if this PATCH-DOC replaces it (ColumnDataChanged or ModelChanged)."""
    if message.msgtype != "PATCH-DOC":
        return None
    for event in message.content.get("events", []):
        if event.get("model", {}).get("id") != source_id or event.get("attr") != "data":
            continue
        if event.get("kind") == "ColumnDataChanged":
            return map_entries(event["data"])
        if event.get("kind") == "ModelChanged":
            return map_entries(event["new"])
    return None


def check_recomputed(data: dict[str, Any], message: Message, x: np.ndarray, amplitude: float) -> None:
    """y must be amplitude * sin(x) (frequency 1, phase 0, offset 0 are never touched).

    As ``np.allclose`` (rtol 1e-9, atol 1e-12) against expectations worked out once per amplitude:
    the check runs for every round trip, in the client that shares the server's cores.
    """
    new_x = decode_array(data["x"], message.buffer_map)
    new_y = decode_array(data["y"], message.buffer_map)
    if not np.array_equal(new_x, x):  # x goes through the server untouched: the same float64s
        raise CheckFailed("recomputed data changed x")
    expected, bound = _expected_y(x, amplitude)
    if new_y.shape != expected.shape or not (np.abs(new_y - expected) <= bound).all():
        raise CheckFailed(f"recomputed y is not {amplitude} * sin(x)")


_EXPECTED: dict[tuple[bytes, float], tuple[np.ndarray, np.ndarray]] = {}  # one x, 45 amplitudes


def _expected_y(x: np.ndarray, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """amplitude * sin(x), and allclose's bound on the difference from it."""
    key = (x.tobytes(), amplitude)
    found = _EXPECTED.get(key)
    if found is None:
        expected = amplitude * np.sin(x)
        found = _EXPECTED[key] = (expected, 1e-12 + 1e-9 * np.abs(expected))
    return found


def amplitude_change(message: Message, amplitude_id: str) -> float | None:
    if message.msgtype != "PATCH-DOC":
        return None
    for event in message.content.get("events", []):
        if (event.get("kind") == "ModelChanged" and event.get("model", {}).get("id") == amplitude_id
                and event.get("attr") == "value"):
            return event.get("new")
    return None


def amplitude_for(step: int) -> float:
    """0.5, 0.6, ... 4.9, then round again: consecutive steps always differ."""
    return round(0.5 + (step % 45) * 0.1, 1)


def slider_patch(amplitude_id: str, value: float) -> dict[str, Any]:
    """What BokehJS sends when the user moves a slider."""
    return {"events": [{"kind": "ModelChanged", "model": {"id": amplitude_id}, "attr": "value", "new": value}]}


# --------------------------------------------------------------------------------------------------
# helpers


def ms(seconds: float) -> float:
    return seconds * 1000.0


async def open_session(url: str, app: str, pause: float = 0.0,
                       track_arrivals: bool = True) -> tuple[BokehSession, Message, float, float]:
    """GET the page, (pause), connect, ACK, PULL-DOC. Returns (session, reply, full s, websocket->reply s)."""
    session = BokehSession(url, app, track_arrivals)
    start = time.perf_counter()
    await session.get_page()
    if pause:
        await asyncio.sleep(pause)
    ws_start = time.perf_counter()
    await session.connect()
    reply = await asyncio.wait_for(session.pull(), REPLY_TIMEOUT_S)
    end = time.perf_counter()
    return session, reply, end - start, end - ws_start


async def close_all(sessions: list[BokehSession]) -> None:
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


def server_rss(pid: int) -> int:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total


# --------------------------------------------------------------------------------------------------
# scenarios: each measures one server kind once (one run) and returns {metric: value}


def scenario_open(kind: str, cfg: Config, profile: Profiler) -> dict[str, float]:
    with running(kind, [SLIDERS_APP], "/sliders") as server, profile.attach(server, "open"):
        return asyncio.run(_open(server.url, cfg, server.pid))


async def _open(url: str, cfg: Config, pid: int) -> dict[str, float]:
    held: list[BokehSession] = []
    sequential: list[float] = []
    cpu_start = cpu_seconds(pid)
    try:
        for _ in range(cfg.open_sequential):
            session, reply, full, _ = await open_session(url, "/sliders")
            held.append(session)
            check_sliders_doc(reply)
            sequential.append(full)
        concurrent: list[float] = []

        async def worker() -> None:
            for _ in range(cfg.open_per_worker):
                session, reply, full, _ = await open_session(url, "/sliders")
                held.append(session)
                check_sliders_doc(reply)
                concurrent.append(full)

        await asyncio.gather(*(worker() for _ in range(cfg.open_workers)))
        cpu = cpu_seconds(pid) - cpu_start
    finally:
        await close_all(held)
    return {
        "cpu_per_open": ms(cpu / (len(sequential) + len(concurrent))),
        "seq_p50": ms(percentile(sequential, 50)),
        "conc_p50": ms(percentile(concurrent, 50)),
        "conc_p99": ms(percentile(concurrent, 99)),
    }


def scenario_patch(kind: str, cfg: Config, profile: Profiler) -> dict[str, float]:
    with running(kind, [SLIDERS_APP], "/sliders") as server, profile.attach(server, "patch"):
        return asyncio.run(_patch(server.url, cfg, server.pid))


async def _patch_roundtrip(session: BokehSession, info: dict[str, Any], step: int) -> float:
    """One slider move; returns the time until both the data PATCH-DOC and the OK are back."""
    value = amplitude_for(step)
    start = time.perf_counter()
    msgid = await session.send("PATCH-DOC", slider_patch(info["amplitude"], value))
    got_ok = got_data = False
    async with asyncio.timeout(REPLY_TIMEOUT_S):  # one deadline, not a task per message as wait_for makes
        while not (got_ok and got_data):
            message = await session.recv()
            if message.header.get("reqid") == msgid:
                if message.msgtype != "OK":
                    raise CheckFailed(f"PATCH-DOC answered {message.msgtype}: {message.content}")
                got_ok = True
                continue
            data = data_change(message, info["source"])
            if data is not None:
                check_recomputed(data, message, info["x"], value)
                got_data = True
    elapsed = time.perf_counter() - start
    if not got_data:
        raise CheckFailed("no data PATCH-DOC before the OK")
    return elapsed


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def _patch(url: str, cfg: Config, pid: int) -> dict[str, float]:
    count = max(cfg.patch_sessions)
    sessions: list[BokehSession] = []
    infos: list[dict[str, Any]] = []
    try:
        for chunk in range(0, count, 8):
            opened = await asyncio.gather(*(open_session(url, "/sliders", track_arrivals=False)
                                            for _ in range(min(8, count - chunk))))
            for session, reply, _, _ in opened:
                sessions.append(session)
                infos.append(check_sliders_doc(reply))
        steps = [0] * count
        for i in range(count):  # warm up every session: first patch paths, imports, caches
            for _ in range(2):
                steps[i] += 1
                await _patch_roundtrip(sessions[i], infos[i], steps[i])
        result: dict[str, float] = {}
        for n in cfg.patch_sessions:
            times: list[float] = []
            end = time.perf_counter() + cfg.patch_seconds

            async def loop(i: int) -> None:
                while time.perf_counter() < end:
                    steps[i] += 1
                    times.append(await _patch_roundtrip(sessions[i], infos[i], steps[i]))

            started, client_cpu = time.perf_counter(), time.process_time()
            server_times = psutil.Process(pid).cpu_times()
            await asyncio.gather(*(loop(i) for i in range(n)))
            elapsed = time.perf_counter() - started
            client_cpu = time.process_time() - client_cpu
            after = psutil.Process(pid).cpu_times()
            server_cpu = after.user + after.system - server_times.user - server_times.system
            result[f"kernel_{n}"] = 100.0 * (after.system - server_times.system) / server_cpu
            result[f"p50_{n}"] = ms(percentile(times, 50))
            result[f"p99_{n}"] = ms(percentile(times, 99))
            result[f"rate_{n}"] = len(times) / elapsed
            result[f"cpu_{n}"] = ms(server_cpu / len(times))
            result[f"client_{n}"] = 100.0 * client_cpu / elapsed
        return result
    finally:
        await close_all(sessions)


def scenario_stream(kind: str, cfg: Config, profile: Profiler) -> dict[str, float]:
    variants = [(n, None, str(n)) for n in cfg.stream_sessions]
    variants += [(n, spinners, f"{n}p{spinners}") for n, spinners in cfg.stream_pinned]
    result: dict[str, float] = {}
    for n, spinners, suffix in variants:  # a fresh server each: closed sessions go on streaming until they expire
        with running(kind, [STREAM_APP], "/stream", placed=spinners is not None) as server, \
                profile.attach(server, f"stream-{suffix}"), \
                stream_pinned(server.pid, spinners) if spinners is not None else contextlib.nullcontext():
            cpu_start, started = cpu_seconds(server.pid), time.perf_counter()
            figures = asyncio.run(stream_measure(server.url, n, cfg.stream_seconds))
            figures["cpu_pct"] = 100.0 * (cpu_seconds(server.pid) - cpu_start) / (time.perf_counter() - started)
        if figures["rows_per_s"] <= 0:
            raise CheckFailed(f"no streamed rows arrived with {n} sessions" + (" pinned" if spinners is not None else ""))
        for key, value in figures.items():
            result[f"{key}_{suffix}"] = value
    return result


def scenario_memory(kind: str, cfg: Config, profile: Profiler) -> dict[str, float]:
    with running(kind, [SLIDERS_APP], "/sliders") as server, profile.attach(server, "memory"):
        return asyncio.run(_memory(server, cfg))


async def _memory(server: RunningServer, cfg: Config) -> dict[str, float]:
    held: list[BokehSession] = []

    async def open_up_to(n: int) -> None:
        while len(held) < n:
            batch = await asyncio.gather(*(open_session(server.url, "/sliders") for _ in range(min(10, n - len(held)))))
            for session, reply, _, _ in batch:
                held.append(session)
                check_sliders_doc(reply)

    try:
        warm = []
        for _ in range(2):  # load every code path once; these sessions stay open, outside the count
            session, reply, _, _ = await open_session(server.url, "/sliders")
            check_sliders_doc(reply)
            warm.append(session)
        await asyncio.sleep(1.0)
        base = server_rss(server.pid)
        result = {}
        for n in sorted(cfg.memory_sessions):
            await open_up_to(n)
            await asyncio.sleep(1.0)
            result[f"kib_{n}"] = (server_rss(server.pid) - base) / n / 1024.0
        return result
    finally:
        await close_all(held + warm)


def scenario_big(kind: str, cfg: Config, profile: Profiler) -> dict[str, float]:
    with running(kind, [BIG_MODELS_APP, BIG_POINTS_APP], "/big_points") as server, profile.attach(server, "big"):
        return asyncio.run(_big(server.url, cfg))


async def _big(url: str, cfg: Config) -> dict[str, float]:
    held: list[BokehSession] = []
    result: dict[str, float] = {}
    try:
        for app, name, check in (("/big_models", "models", check_big_models_doc),
                                 ("/big_points", "points", check_big_points_doc)):
            full, pull_now, pull_paused = [], [], []
            for _ in range(cfg.big_samples):
                session, reply, total, ws_to_reply = await open_session(url, app)
                held.append(session)
                check(reply)
                full.append(total)
                pull_now.append(ws_to_reply)
                session, reply, _, ws_to_reply = await open_session(url, app, pause=BROWSER_PAUSE_S)
                held.append(session)
                check(reply)
                pull_paused.append(ws_to_reply)
            result[f"{name}_full"] = ms(statistics.median(full))
            result[f"{name}_pull_now"] = ms(statistics.median(pull_now))
            result[f"{name}_pull_paused"] = ms(statistics.median(pull_paused))
        return result
    finally:
        await close_all(held)


def scenario_fanout(kind: str, cfg: Config, profile: Profiler) -> dict[str, float]:
    with running(kind, [SLIDERS_APP], "/sliders") as server, profile.attach(server, "fanout"):
        return asyncio.run(_fanout(server.url, cfg))


async def _fanout_session(url: str, connections: int) -> tuple[list[BokehSession], dict[str, Any]]:
    """One page GET, then ``connections`` websockets with its token (reusable until it expires), each pulled."""
    page = BokehSession(url, "/sliders")
    token = await page.get_page()
    clients = [BokehSession(url, "/sliders") for _ in range(connections)]
    info = None
    for client in clients:
        client.token = token
        await client.connect()
        reply = await asyncio.wait_for(client.pull(), REPLY_TIMEOUT_S)
        got = check_sliders_doc(reply)
        if info is None:
            info = got
        elif got["amplitude"] != info["amplitude"] or got["source"] != info["source"]:
            raise CheckFailed("connections with one token see different documents")
    assert info is not None
    return clients, info


async def _broadcast_once(clients: list[BokehSession], info: dict[str, Any], value: float) -> list[float]:
    """clients[0] moves the slider; seconds until each other connection has both resulting PATCH-DOCs, sorted."""

    async def hear(client: BokehSession) -> float:
        seen_value = seen_data = None
        while seen_value is None or seen_data is None:
            message = await asyncio.wait_for(client.recv(), REPLY_TIMEOUT_S)
            new = amplitude_change(message, info["amplitude"])
            if new is not None:
                if new != value:
                    raise CheckFailed(f"broadcast slider value {new}, expected {value}")
                seen_value = message.arrived_at
            data = data_change(message, info["source"])
            if data is not None:
                check_recomputed(data, message, info["x"], value)
                seen_data = message.arrived_at
        return max(seen_value, seen_data)

    origin = clients[0]
    listeners = [asyncio.ensure_future(hear(client)) for client in clients[1:]]
    await asyncio.sleep(0)
    start = time.perf_counter()
    msgid = await origin.send("PATCH-DOC", slider_patch(info["amplitude"], value))
    got_ok = got_data = False
    try:
        while not (got_ok and got_data):
            message = await asyncio.wait_for(origin.recv(), REPLY_TIMEOUT_S)
            if message.header.get("reqid") == msgid:
                if message.msgtype != "OK":
                    raise CheckFailed(f"PATCH-DOC answered {message.msgtype}")
                got_ok = True
            elif (data := data_change(message, info["source"])) is not None:
                check_recomputed(data, message, info["x"], value)
                got_data = True
        return sorted(t - start for t in await asyncio.gather(*listeners))
    finally:
        for listener in listeners:
            listener.cancel()


async def _fanout(url: str, cfg: Config) -> dict[str, float]:
    """Two sessions of the sliders app: one with 2 sockets, one with N. A slider PATCH-DOC from the first
    socket of each must reach every other socket of that session; how much longer N takes than 2 is the
    cost of the extra connections (measured where the bytes arrive, so it is not hidden by batched writes
    nor inflated by this client's own per-socket work)."""
    n = cfg.fanout_connections
    small, small_info = await _fanout_session(url, 2)
    large, large_info = await _fanout_session(url, n)
    try:
        single, firsts, lasts = [], [], []
        warmup = 2
        for step in range(1, warmup + cfg.fanout_patches + 1):
            value = amplitude_for(step)
            one = await _broadcast_once(small, small_info, value)
            many = await _broadcast_once(large, large_info, value)
            if step > warmup:
                single.append(one[0])
                firsts.append(many[0])
                lasts.append(many[-1])
        t2, first, last = statistics.median(single), statistics.median(firsts), statistics.median(lasts)
        per_extra = (last - t2) / max(1, n - 2)
        return {"single": ms(t2), "first": ms(first), "last": ms(last), "per_extra": ms(per_extra),
                "extra_ratio": per_extra / t2}
    finally:
        await close_all(small + large)


EXPIRE_OURS = re.compile(r"expired (\d+) sessions in ([\d.]+) ms; longest event-loop stall ([\d.]+) ms")
EXPIRE_BASELINE = re.compile(r"bokeh serve's way\): ([\d.]+) ms; longest event-loop stall ([\d.]+) ms")


def scenario_expire(cfg: Config) -> dict[str, dict[str, float]]:
    """Runs bench/expire_sessions.py --baseline once; bokeh serve's column is its Document.destroy baseline."""
    root = server_root() if (server_root() / "bench" / "expire_sessions.py").exists() else ROOT
    command = [PYTHON, str(root / "bench" / "expire_sessions.py"), "--sessions", str(cfg.expire_sessions), "--baseline"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=900, env=env)
    if done.returncode != 0:
        raise CheckFailed(f"expire_sessions.py failed:\n{done.stderr[-2000:]}")
    ours, theirs = EXPIRE_OURS.search(done.stdout), EXPIRE_BASELINE.search(done.stdout)
    if not ours or not theirs:
        raise CheckFailed(f"unexpected expire_sessions.py output:\n{done.stdout}")
    if int(ours.group(1)) != cfg.expire_sessions:
        raise CheckFailed("expire_sessions.py expired a different number of sessions")
    return {
        OURS: {"stall": float(ours.group(3)), "total": float(ours.group(2))},
        THEIRS: {"stall": float(theirs.group(2)), "total": float(theirs.group(1))},
    }


def scenario_gc(kind: str, cfg: Config, profile: Profiler) -> dict[str, float]:
    return held_bench.gc_scenario(kind, cfg.gc_sessions, cfg.gc_updates, CheckFailed)


def scenario_held(kind: str, cfg: Config, profile: Profiler) -> dict[str, float]:
    with running(kind, [SLIDERS_APP], "/sliders") as server, profile.attach(server, "held"):
        return asyncio.run(held_bench.held_measure(server.url, cfg.held_sessions, cfg.held_seconds, open_session,
                                             check_sliders_doc, _patch_roundtrip, percentile, close_all,
                                             lambda: cpu_seconds(server.pid)))


def scenario_procs(results: Results, cfg: Config) -> None:
    """bench/procs.py's comparison of one and two workers; its own table goes into the notes."""
    import procs

    why = procs.redis_available()
    if why is not None:
        print(f"note: skipped procs: it needs Redis: {why}", flush=True)
        results.notes.append(f"procs: skipped, it needs Redis: {why}")
        return
    client = procs.default_client()
    log(f"[procs] runbokeh --num-procs 1 and 2, {cfg.procs_sessions} sessions, {cfg.procs_seconds:g} s each, {cfg.runs} run(s), "
        f"client: {client}")
    try:
        lines = procs.compare([os.environ.get("BENCH_SERVER_ROOT", "")], cfg.runs, cfg.procs_sessions, cfg.procs_seconds,
                              report=log, client=client)
    except Exception as exc:
        results.failures[("procs", OURS)] = f"{type(exc).__name__}: {exc}"[:500]
        return
    results.notes.append(f"procs: bokehserver only, {cfg.procs_sessions} sessions patching in closed loops, client: {client} "
                         f"(median [min-max] of {cfg.runs} run(s)):\n" + "\n".join(lines))


MEASURE: dict[str, Callable[[str, Config, Profiler], dict[str, float]]] = {
    "open": scenario_open,
    "patch": scenario_patch,
    "stream": scenario_stream,
    "memory": scenario_memory,
    "big": scenario_big,
    "fanout": scenario_fanout,
    "gc": scenario_gc,
    "held": scenario_held,
}


# --------------------------------------------------------------------------------------------------
# profiling (py-spy on our server)


class Profiler:
    """With a directory, records py-spy samples of our server during its first run of each scenario.

    ``--gil`` keeps only the thread holding the GIL in each sample, so a server with a thread per
    session is not drowned in idle executor threads; ``--nonblocking`` does not pause it to sample.
    """

    def __init__(self, directory: Path | None, rate: int = 100) -> None:
        self.directory = directory
        self.rate = rate
        self.enabled_for_run = False
        self.files: dict[str, Path] = {}
        self.binary = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            if not Path(self.binary).exists():
                raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")

    @contextlib.contextmanager
    def attach(self, server: RunningServer, label: str) -> Iterator[None]:
        if server.name != OURS:
            label = f"{label}-{server.name}"
        if self.directory is None or server.name not in OUR_KINDS or not self.enabled_for_run or label in self.files:
            yield
            return
        out = self.directory / f"{label}.txt"
        recorder = subprocess.Popen(
            [self.binary, "record", "-p", str(server.pid), "-r", str(self.rate), "--gil", "--nonblocking",
             "-f", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        try:
            yield
        finally:
            recorder.send_signal(signal.SIGINT)
            try:
                recorder.wait(30)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait(5)
            if out.exists():
                self.files[label] = out

    def summaries(self, top: int = 22) -> str:
        return "\n".join(summarize_profile(label, path, top) for label, path in self.files.items())


# Frames every stack shares (thread and loop plumbing): left out of the "inclusive" list.
_PLUMBING = re.compile(
    r"^(Thread\.(_bootstrap|_bootstrap_inner|run)|_worker|_WorkItem\.run|<module>|main|execute_from_command_line|"
    r"ManagementUtility\.execute|BaseCommand\.\w+|Command\.handle|BokehDaphneServer\.run|"
    r"AsyncioSelectorReactor\.run|BaseEventLoop\.(run_forever|_run_once)|Handle\._run|"
    r"SyncToAsync\.(__call__|thread_handler)\b.*|Context\.run|_with_fresh_connections\.<locals>\.run) "
)
_IDLE_LEAVES = re.compile(r"^(_worker|EpollSelector\.select|Condition\.wait|Thread\._wait_for_tstate_lock) ")
_PACKAGES = ("bokehserver/", "bokeh/", "daphne/", "twisted/", "autobahn/", "asgiref/", "channels/", "django/",
             "asyncio/", "json/", "numpy/", "concurrent/", "threading")


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)`` with a short package path."""
    match = re.match(r"^(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    func, path = match.groups()
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    if "bokehserver-snapshot-" in path or path.startswith(str(ROOT)):
        path = path.split("/bokehserver/", 1)[-1]
        path = "bokehserver/" + path if not path.startswith(("bench/", "project/", "manage.py")) else path
    return f"{func} ({path})"


def _package(name: str) -> str:
    for package in _PACKAGES:
        if f"({package}" in name:
            return package.rstrip("/")
    return "other"


def summarize_profile(label: str, path: Path, top: int) -> str:
    """Shares of GIL-holding samples: by package (self time), by function (inclusive and self)."""
    inclusive: dict[str, int] = defaultdict(int)
    leaf: dict[str, int] = defaultdict(int)
    packages: dict[str, int] = defaultdict(int)
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        if _IDLE_LEAVES.match(frames[-1]):
            idle += count
            continue
        total += count
        leaf[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for name in set(frames):
            if not _PLUMBING.match(name):
                inclusive[name] += count
    if not total:
        return f"[{label}] no busy samples"
    out = [f"[{label}] {total} busy samples (+{idle} idle: executor threads waiting, loop in select)"]
    out.append("  self time by package: " + ", ".join(
        f"{name} {100 * count / total:.0f} %" for name, count in sorted(packages.items(), key=lambda kv: -kv[1])))
    out.append("  inclusive (function and what it calls):")
    for name, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"    {100 * count / total:5.1f} %  {name}")
    out.append("  self (leaf frames):")
    for name, count in sorted(leaf.items(), key=lambda kv: -kv[1])[:top // 2]:
        out.append(f"    {100 * count / total:5.1f} %  {name}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class Target:
    kind: str  # "ratio<=", "ours<=", "ours>="
    value: float

    def describe(self) -> str:
        return {"ratio<=": f"<= {self.value:g}x", "ours<=": f"<= {self.value:g}", "ours>=": f">= {self.value:g}"}[self.kind]

    def met(self, ours: float | None, ratio: float | None) -> bool | None:
        if self.kind == "ratio<=":
            return None if ratio is None else ratio <= self.value
        if ours is None:
            return None
        return ours <= self.value if self.kind == "ours<=" else ours >= self.value


@dataclass(frozen=True)
class Row:
    scenario: str
    label: str
    key: str
    unit: str
    target: Target | None = None
    digits: int = 1


def rows_for(cfg: Config) -> list[Row]:
    rows = [
        Row("open", "sliders, sequential, p50", "seq_p50", "ms", Target("ratio<=", 1.0)),
        Row("open", f"sliders, {cfg.open_workers} concurrent, p50", "conc_p50", "ms", Target("ratio<=", 0.4)),
        Row("open", f"sliders, {cfg.open_workers} concurrent, p99", "conc_p99", "ms"),
        Row("open", "server CPU per open (all opens of the run)", "cpu_per_open", "ms", Target("ratio<=", 0.35)),
    ]
    for n in cfg.patch_sessions:
        # one session: how long a round trip takes; several in closed loops: what each costs the server
        # (a round trip then waits for the others' turns: its time is about n times the CPU per round trip)
        rows += [
            Row("patch", f"{n} session(s), round trip p50", f"p50_{n}", "ms", Target("ratio<=", 0.1) if n == 1 else None, 2),
            Row("patch", f"{n} session(s), round trip p99", f"p99_{n}", "ms", None, 2),
            Row("patch", f"{n} session(s), round trips/s", f"rate_{n}", "/s", None, 0),
            Row("patch", f"{n} session(s), server CPU per round trip", f"cpu_{n}", "ms",
                Target("ratio<=", 0.5) if n > 1 else None, 3),
            Row("patch", f"{n} session(s), bench client's CPU (100 = a core)", f"client_{n}", "%", None, 0),
        ]
    for n in cfg.stream_sessions:
        rows += [
            Row("stream", f"{n} sessions, rows delivered/s", f"rows_per_s_{n}", "/s", None, 0),
            Row("stream", f"{n} sessions, delivered", f"delivered_pct_{n}", "%", Target("ours>=", 99.0), 2),
            Row("stream", f"{n} sessions, jitter p50", f"jitter_p50_ms_{n}", "ms", None, 2),
            Row("stream", f"{n} sessions, jitter p99", f"jitter_p99_ms_{n}", "ms", Target("ratio<=", 1.0), 2),
            Row("stream", f"{n} sessions, arrivals < half a period apart (bursts)", f"burst_pct_{n}", "%", None, 2),
            Row("stream", f"{n} sessions, server CPU (100 = a core; opening included)", f"cpu_pct_{n}", "%", None, 0),
        ]
    for n, spinners in cfg.stream_pinned:
        where = f"{n} sessions, server pinned to one core" + (f" + {spinners} busy processes" if spinners else "")
        key = f"{n}p{spinners}"
        rows += [
            Row("stream", f"{where}, delivered", f"delivered_pct_{key}", "%", Target("ours>=", 99.9) if not spinners else None, 2),
            Row("stream", f"{where}, worst session delivered", f"worst_session_pct_{key}", "%", None, 2),
            Row("stream", f"{where}, jitter p50", f"jitter_p50_ms_{key}", "ms", None, 2),
            Row("stream", f"{where}, jitter p99", f"jitter_p99_ms_{key}", "ms", Target("ratio<=", 0.5), 2),
            Row("stream", f"{where}, arrivals < half a period apart (bursts)", f"burst_pct_{key}", "%", None, 2),
            Row("stream", f"{where}, server CPU (100 = a core)", f"cpu_pct_{key}", "%", None, 0),
        ]
    for n in sorted(cfg.memory_sessions):
        # the per-session figure at the most sessions, where the process's fixed part weighs least
        target = Target("ratio<=", 0.4) if n == max(cfg.memory_sessions) else Target("ratio<=", 1.0)
        rows.append(Row("memory", f"RSS per open session, {n} sessions", f"kib_{n}", "KiB", target, 0))
    for name, what in (("models", "2,000 models"), ("points", "100,000 points")):
        rows += [
            Row("big", f"{what}: ws open -> PULL-DOC-REPLY, right after GET", f"{name}_pull_now", "ms"),
            Row("big", f"{what}: ws open -> PULL-DOC-REPLY, after 150 ms pause", f"{name}_pull_paused", "ms",
                Target("ratio<=", 0.3)),
            Row("big", f"{what}: full open (GET + ws + PULL-DOC)", f"{name}_full", "ms", Target("ratio<=", 1.0)),
        ]
    others = cfg.fanout_connections - 1
    rows += [
        Row("fanout", "2 sockets/1 session: the other one has the patch", "single", "ms", None, 2),
        Row("fanout", f"{cfg.fanout_connections} sockets/1 session: first of {others} others has it", "first", "ms", None, 2),
        Row("fanout", f"{cfg.fanout_connections} sockets/1 session: all {others} others have it", "last", "ms", None, 2),
        Row("fanout", f"cost per extra connection ((all of {others} - 1 of 1) / {others - 1})", "per_extra", "ms", None, 3),
        Row("fanout", "per-extra cost / cost of the first", "extra_ratio", "x", Target("ours<=", 0.2), 3),
        Row("expire", f"{cfg.expire_sessions} closed sessions: longest loop stall", "stall", "ms", Target("ours<=", 50.0)),
        Row("expire", f"{cfg.expire_sessions} closed sessions: time to expire all", "total", "ms", None, 0),
    ]
    return rows + held_rows(cfg)


def held_rows(cfg: Config) -> list[Row]:
    n, active = cfg.gc_sessions, held_bench.ACTIVE
    return [
        Row("gc", f"{n} sessions: whole collection (gc.collect()), CPU", "full_ms", "ms", Target("ours<=", 20.0)),
        Row("gc", f"{n} sessions: whole collection (gc.collect()), wall", "full_wall_ms", "ms"),
        Row("gc", f"{n} sessions: objects a whole collection walks", "walked", "", None, 0),
        Row("gc", f"{n} sessions + {cfg.gc_updates} updates: longest gen 2 collection, CPU", "auto_gen2_ms", "ms",
            Target("ours<=", 20.0)),
        Row("gc", f"{n} sessions + {cfg.gc_updates} updates: gen 2 collections", "auto_gen2_count", "", None, 0),
        Row("gc", f"{cfg.gc_updates} updates with {n} open: longest gen 2 collection, CPU", "updates_gen2_ms", "ms",
            None, 2),
        Row("gc", f"{cfg.gc_updates} updates with {n} open: gen 2 collections", "updates_gen2_count", "", None, 0),
        Row("gc", f"{n} sessions + {cfg.gc_updates} updates: longest gen 1 collection, CPU", "auto_gen1_ms", "ms", None, 2),
        Row("gc", f"{n} sessions + {cfg.gc_updates} updates: longest gen 0 collection, CPU", "auto_gen0_ms", "ms", None, 2),
    ] + [
        Row("held", f"{active} busy of {open_} open: {what}", f"{phase}_{key}", "ms", None, digits)
        for phase, open_ in (("few", active), ("many", cfg.held_sessions))
        for key, what, digits in (("p50", "round trip p50", 2), ("p99", "round trip p99", 2), ("max", "longest round trip", 1),
                                  ("cpu", "server CPU per round trip", 3))
    ] + [
        Row("held", f"p99 with {cfg.held_sessions} open / with {active} open", "p99_ratio", "x", Target("ours<=", 2.0), 2),
        Row("held", f"server CPU per round trip with {cfg.held_sessions} open / with {active} open", "cpu_ratio", "x",
            None, 2),
    ]


def summarize(values: list[float]) -> tuple[float, float, float] | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt_cell(stats: tuple[float, float, float] | None, digits: int, runs: int) -> str:
    if stats is None:
        return "-"
    med, low, high = stats
    text = f"{med:.{digits}f}"
    if runs > 1:
        text += f" [{low:.{digits}f}-{high:.{digits}f}]"
    return text


@dataclass
class Results:
    kinds: list[str]
    cfg: Config
    values: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def stats(self, row: Row, kind: str) -> tuple[float, float, float] | None:
        if (row.scenario, kind) in self.failures:
            return None
        return summarize([run.get(row.key) for run in self.values[row.scenario][kind] if row.key in run])

    def table(self, scenarios: list[str], markdown: bool = False) -> str:
        headers = ["scenario", "metric", "unit", *self.kinds, "ours/serve", "target", "met"]
        lines: list[list[str]] = []
        for row in rows_for(self.cfg):
            if row.scenario not in scenarios:
                continue
            cells = {}
            for kind in self.kinds:
                if (row.scenario, kind) in self.failures:
                    cells[kind] = "FAILED"
                else:
                    runs = len(self.values[row.scenario][kind])
                    cells[kind] = fmt_cell(self.stats(row, kind), row.digits, runs)
            ours, theirs = self.stats(row, OURS), self.stats(row, THEIRS)
            ratio = ours[0] / theirs[0] if ours and theirs and theirs[0] else None
            met = row.target.met(ours[0] if ours else None, ratio) if row.target else None
            lines.append([
                row.scenario, row.label, row.unit, *(cells[k] for k in self.kinds),
                "-" if ratio is None else f"{ratio:.2f}",
                row.target.describe() if row.target else "",
                {True: "yes", False: "NO", None: "" if row.target is None else "?"}[met],
            ])
        if markdown:
            out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            out += ["| " + " | ".join(line) + " |" for line in lines]
            return "\n".join(out)
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
        out = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
        out += [fmt.format(*line) for line in lines]
        return "\n".join(out)

    def as_json(self) -> dict[str, Any]:
        return {
            "kinds": self.kinds,
            "config": dataclasses.asdict(self.cfg),
            "values": {s: dict(v) for s, v in self.values.items()},
            "failures": {f"{s}/{k}": text for (s, k), text in self.failures.items()},
            "notes": self.notes,
        }


# --------------------------------------------------------------------------------------------------
# main


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(kinds: list[str], scenarios: list[str], cfg: Config, profiler: Profiler) -> Results:
    results = Results(kinds, cfg)
    for scenario in scenarios:
        if scenario == "expire":
            log(f"[expire] bench/expire_sessions.py --sessions {cfg.expire_sessions} --baseline (in-process, once)")
            try:
                for kind, figures in scenario_expire(cfg).items():
                    if kind in kinds:
                        results.values["expire"][kind].append(figures)
            except (CheckFailed, subprocess.TimeoutExpired) as exc:
                results.failures[("expire", OURS)] = str(exc)
            results.notes.append(
                "expire: in-process only. bokehserver = its cleanup job destroying the sessions; bokeh serve = "
                "bokeh's Document.destroy per session (what bokeh serve's cleanup calls, one gc.collect() each), "
                "measured in the same process by expire_sessions.py --baseline."
            )
            continue
        if scenario == "procs":
            scenario_procs(results, cfg)
            continue
        runs = cfg.stream_runs if scenario == "stream" else cfg.runs
        for index in range(runs):
            order = kinds if index % 2 == 0 else kinds[::-1]
            for kind in order:
                if (scenario, kind) in results.failures:
                    continue
                profiler.enabled_for_run = index == 0
                started = time.perf_counter()
                try:
                    figures = MEASURE[scenario](kind, cfg, profiler)
                except (KeyboardInterrupt, asyncio.CancelledError):
                    raise KeyboardInterrupt from None
                except CheckFailed as exc:
                    results.failures[(scenario, kind)] = str(exc)
                    log(f"[{scenario}] run {index + 1}/{runs} {kind}: CHECK FAILED: {exc}")
                    continue
                except Exception as exc:  # a server that crashes or hangs does not score either
                    results.failures[(scenario, kind)] = f"{type(exc).__name__}: {exc}"[:500]
                    log(f"[{scenario}] run {index + 1}/{runs} {kind}: ERROR: {type(exc).__name__}: {exc}")
                    continue
                results.values[scenario][kind].append(figures)
                shown = ", ".join(f"{k}={v:.3g}" for k, v in figures.items())
                log(f"[{scenario}] run {index + 1}/{runs} {kind} ({time.perf_counter() - started:.1f} s): {shown}")
    if "gc" in scenarios:
        results.notes.append(held_bench.GC_NOTE)
    return results


def make_snapshot(rev: str) -> Path:
    """Extract ``git archive rev`` of this repository into a temporary directory and return it."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True, check=True)
    target = Path(tempfile.mkdtemp(prefix="bokehserver-snapshot-"))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def use_server_root(root: Path) -> str:
    """Serve bokehserver from ``root``; check that its interpreter imports bokehserver from there."""
    os.environ["BENCH_SERVER_ROOT"] = str(root)
    probe = subprocess.run([PYTHON, "-c", "import bokehserver; print(bokehserver.__file__)"], cwd=root,
                           capture_output=True, text=True, check=True)
    where = probe.stdout.strip()
    if not where.startswith(str(root)):
        raise SystemExit(f"bokehserver would be imported from {where}, not from {root}")
    return where


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so every running() block stops its server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny settings (few runs, sessions, seconds): < 60 s")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--runs", type=int, default=None, help="runs per scenario and server (default 3; stream 2)")
    parser.add_argument("--servers", default=None,
                        help="comma-separated server kinds: bokehserver, 'bokeh serve', bokeh-django "
                             "(default: the first two, plus bokeh-django when installed and not --quick)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record py-spy profiles of bokehserver (first run of each scenario) into DIR")
    parser.add_argument("--snapshot", default=None, metavar="REV",
                        help="serve bokehserver from `git archive REV` (e.g. HEAD), away from edits to the work tree")
    parser.add_argument("--server-root", type=Path, default=None, metavar="DIR",
                        help="serve bokehserver from this tree instead of the work tree")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the raw figures as JSON")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE", help="also write the table as Markdown")
    args = parser.parse_args(argv)

    cfg = QUICK if args.quick else FULL
    if args.runs is not None:
        cfg = dataclasses.replace(cfg, runs=args.runs, stream_runs=args.runs)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.servers:
        kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    else:
        kinds = [OURS, THEIRS] + ([] if args.quick else [BOKEH_DJANGO])
    notes = []
    for kind in list(kinds):
        ok, why = available(kind)
        if not ok:
            kinds.remove(kind)
            notes.append(f"skipped {kind}: {why}")
            print(f"note: skipped {kind}: {why}", flush=True)
    if not kinds:
        parser.error("no server kind to run")
    profiler = Profiler(args.profile, rate=int(os.environ.get("BENCH_PROFILE_RATE", "100")))
    signal.signal(signal.SIGTERM, _terminate)
    tree, snapshot = os.environ.get("BENCH_SERVER_ROOT") or "the work tree", None
    if args.server_root:
        use_server_root(args.server_root.resolve())
        tree = str(args.server_root)
    elif args.snapshot:
        snapshot = make_snapshot(args.snapshot)
        use_server_root(snapshot)
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.snapshot],
                                capture_output=True, text=True).stdout.strip()
        tree = f"git archive {args.snapshot} ({commit})"
    notes.append(f"bokehserver served from {tree}")

    started = time.perf_counter()
    print(f"bench/run.py: servers {', '.join(kinds)}; scenarios {', '.join(scenarios)}; "
          f"{cfg.runs} run(s){' (quick)' if args.quick else ''}; bokehserver from {tree}", flush=True)
    try:
        results = run(kinds, scenarios, cfg, profiler)
    finally:
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
    results.notes[:0] = notes
    elapsed = time.perf_counter() - started

    print()
    print(f"bokehserver vs bokeh serve: median over runs [min-max]; ratio = bokehserver / bokeh serve "
          f"({platform.node()}, {os.cpu_count()} cores, {elapsed:.0f} s)")
    print(results.table(scenarios))
    for (scenario, kind), text in results.failures.items():
        print(f"FAILED {scenario} on {kind}: {text}")
    for note in results.notes:
        print(f"note: {note}")
    if args.profile is not None:
        print()
        print(f"py-spy profiles of bokehserver (raw stacks in {args.profile}):")
        print(profiler.summaries())
        print("note: figures taken while py-spy samples the server are perturbed; profile runs are not for the table")
    if args.json:
        args.json.write_text(json.dumps(results.as_json(), indent=1))
    if args.markdown:
        args.markdown.write_text(results.table(scenarios, markdown=True) + "\n")
    judged = {OURS, THEIRS}
    return 1 if any(kind in judged for (_, kind) in results.failures) else 0


if __name__ == "__main__":
    sys.exit(main())
