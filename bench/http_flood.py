"""One client pipelines thousands of HTTP requests on one connection; how long do other sessions stall?

Starts runbokeh on examples/sliders.py, opens one sliders session (page, websocket, PULL-DOC) that moves
its slider in a closed loop (PATCH-DOC until the recomputed data and the OK are back), and meanwhile a
raw socket writes ``--requests`` ``GET <path> HTTP/1.1`` requests back to back and reads whatever comes
back. Prints the round trips before and during the flood (from its start until it ends, and for at
least ``--window-seconds``; p50, p99, max: the worst stall), the answers the flooder got, and the
server's RSS. ``BENCH_SERVER_ROOT=<snapshot>`` runs another tree's server (bench/servers.py).

    .venv/bin/python bench/http_flood.py [--requests 5000] [--path /sliders] [--baseline-seconds 3] [--window-seconds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
import threading
import time
from pathlib import Path

import psutil

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import trip_summary  # noqa: E402
from run import SLIDERS_APP, _patch_roundtrip, check_sliders_doc, open_session  # noqa: E402
from servers import running  # noqa: E402


def flood(port: int, path: str, requests: int, result: dict[str, object]) -> None:
    """Write every request at once on one connection, then read until the server closes or goes quiet."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(30)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    received = bytearray()
    done = threading.Event()

    def reader() -> None:
        counted, scanned = 0, 0
        try:
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                received.extend(chunk)
                start = max(0, scanned - 16)  # a status line may straddle two chunks
                counted += len(STATUS_LINE.findall(received, start)) - len(STATUS_LINE.findall(received, start, scanned))
                scanned = len(received)
                if counted >= requests:
                    result["last_response_s"] = round(time.perf_counter() - started, 3)
                    break
        except OSError:
            pass
        done.set()

    started = time.perf_counter()
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        sock.sendall(request * requests)
    except OSError as exc:
        result["send_error"] = repr(exc)
    result["sent_s"] = round(time.perf_counter() - started, 3)
    done.wait(120)
    result["flood_s"] = round(time.perf_counter() - started, 3)
    statuses: dict[str, int] = {}
    for status in STATUS_LINE.findall(bytes(received)):
        statuses[status.decode()] = statuses.get(status.decode(), 0) + 1
    result["responses"] = sum(statuses.values())
    result["statuses"] = statuses
    sock.close()


async def measure(url: str, pid: int, requests: int, path: str, baseline_seconds: float,
                  window_seconds: float) -> dict[str, object]:
    server = psutil.Process(pid)
    rss = lambda: round(server.memory_info().rss / 2**20, 1)  # noqa: E731
    session, reply, _, _ = await open_session(url, "/sliders")
    info = check_sliders_doc(reply)
    step = 0

    async def trips_until(stop: callable) -> list[float]:
        nonlocal step
        trips = []
        while not stop():
            trips.append(await _patch_roundtrip(session, info, step))
            step += 1
        return trips

    until = time.monotonic() + baseline_seconds
    before = await trips_until(lambda: time.monotonic() > until)
    rss_before = rss()
    flooded: dict[str, object] = {}
    port = int(url.rsplit(":", 1)[1])
    thread = threading.Thread(target=flood, args=(port, path, requests, flooded), daemon=True)
    thread.start()
    flood_started = time.monotonic()
    during = await trips_until(lambda: not thread.is_alive() and time.monotonic() - flood_started > window_seconds)
    await session.close()
    return {"requests": requests, "path": path, "before": trip_summary(before), "during": trip_summary(during),
            "flood": flooded, "rss_mb_before": rss_before, "rss_mb_after": rss()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--path", default="/sliders")
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--window-seconds", type=float, default=10.0,
                        help="measure round trips at least this long from the flood's start (a flood cut short still compares)")
    args = parser.parse_args()
    with running("bokehserver", [SLIDERS_APP], "/sliders") as server:
        result = asyncio.run(measure(server.url, server.pid, args.requests, args.path, args.baseline_seconds,
                                   args.window_seconds))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
