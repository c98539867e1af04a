"""Python allocations per open session (tracemalloc), bokehserver's Server against bokeh's own Server.

Each server runs in this process with tracemalloc on; a client process opens sessions of the sliders
app (page GET, websocket, PULL-DOC) and holds them. The figure is the growth of traced Python memory
per session after a full collection, with the files that grew most. Unlike RSS (bench/run.py's memory
scenario) it leaves out the allocator's own slack and thread stacks. Slow: tracemalloc slows the
server several times over.

    .venv/bin/python bench/python_memory.py [--sessions 40] [--server bokehserver|bokeh-serve] [--top 8]
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
SLIDERS = str(ROOT / "examples" / "sliders.py")
QUIET = {"unused_session_lifetime_milliseconds": 10**9, "check_unused_sessions_milliseconds": 10**9}

CLIENT = """
import asyncio, sys
sys.path.insert(0, sys.argv[3])
from client import BokehSession

async def main(port, count):
    held = []
    for _ in range(count):
        session = BokehSession(f"http://127.0.0.1:{port}", "/sliders")
        await session.get_page()
        await session.connect()
        await session.pull()
        held.append(session)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


async def hold_sessions(port: int, count: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), str(count), str(ROOT / "bench"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    line = await process.stdout.readline()
    if not line.startswith(b"ready"):
        raise SystemExit("the client could not open its sessions")
    return process


async def release(process: asyncio.subprocess.Process) -> None:
    process.stdin.write(b"\n")
    await process.stdin.drain()
    await process.wait()


def start_server(kind: str) -> tuple[object, int]:
    if kind == "bokeh-serve":
        from bokeh.command.util import build_single_handler_application
        from bokeh.server.server import Server as BokehServer

        server = BokehServer({"/sliders": build_single_handler_application(SLIDERS)}, port=0, address="127.0.0.1", **QUIET)
        server.start()
        return server, server.port
    from bokehserver import Server

    server = Server({"/sliders": SLIDERS}, port=0, address="127.0.0.1", **QUIET)
    server.start()
    return server, server.port


async def measure(kind: str, count: int, top: int) -> None:
    server, port = start_server(kind)
    warm = await hold_sessions(port, 3)
    await asyncio.sleep(0.5)
    gc.collect()
    before = tracemalloc.take_snapshot()
    held = await hold_sessions(port, count)
    await asyncio.sleep(1.0)
    gc.collect()
    after = tracemalloc.take_snapshot()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "filename")
    total = sum(stat.size_diff for stat in stats) / count / 1024
    print(f"{kind}: {total:.1f} KiB of Python allocations per open session ({count} sessions)")
    for stat in stats[:top]:
        name = stat.traceback[0].filename.split("site-packages/")[-1]
        print(f"  {stat.size_diff / count / 1024:7.2f} KiB  {name}")
    await release(held)
    await release(warm)
    stopped = server.stop()
    if asyncio.iscoroutine(stopped):
        await stopped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--server", choices=("bokehserver", "bokeh-serve"), default="bokehserver")
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    if args.server == "bokehserver":  # the session records the admin shows are part of the cost
        import tempfile

        import django
        from django.core.management import call_command

        os.environ.setdefault("BOKEHSERVER_DB", str(Path(tempfile.mkdtemp()) / "python-memory.sqlite3"))
        django.setup()
        call_command("migrate", verbosity=0)
    tracemalloc.start(1)
    asyncio.run(measure(args.server, args.sessions, args.top))


if __name__ == "__main__":
    main()
