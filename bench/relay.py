"""What relaying a websocket to its session's process costs, and what a second worker process buys.

0. One message there and back between two channels of one process: over channels-redis's
   channel layer, and over the relay's Redis lists (what a relayed message costs per hop pair).
1. Round trip of a slider PATCH-DOC (until the OK and the recomputed data are back) on the sliders
   app: the websocket on the process owning the session (local) against the websocket on another
   process sharing Redis (relayed to the owner and back). Blocks of each alternate.
2. Patch round trips per second with 32 sessions patching at once, served by ``runbokeh
   --num-procs 1`` and ``--num-procs 2`` on one port (pages and websockets land on either worker, so
   about half the websockets of the 2-worker run are relayed). The client shares the machine's
   cores with the servers: its CPU use is reported.

    python bench/relay.py [--redis redis://127.0.0.1:6379] [--round-trips 400] [--seconds 10] [--on-loop]

``--on-loop`` runs app code on the event loop (``runbokeh --app-code-threads 0``), as bokeh serve does.

Needs a Redis server.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import BokehSession, percentile  # noqa: E402
from procs import measure, migrated_database  # noqa: E402
from run import SLIDERS_APP, _patch_roundtrip, check_sliders_doc, open_session  # noqa: E402
from servers import ROOT, running  # noqa: E402

BLOCK = 50


async def relayed_session(page_url: str, ws_url: str) -> tuple[BokehSession, dict[str, Any]]:
    """A session built by the server at ``page_url``, its websocket on the one at ``ws_url``."""
    session = BokehSession(page_url, "/sliders")
    await session.get_page()
    session.base_url = ws_url
    await session.connect()
    return session, check_sliders_doc(await session.pull())


async def latency(owner_url: str, other_url: str, round_trips: int) -> dict[str, float]:
    local, local_reply, _, _ = await open_session(owner_url, "/sliders")
    local_info = check_sliders_doc(local_reply)
    relayed, relayed_info = await relayed_session(owner_url, other_url)
    times: dict[str, list[float]] = {"local": [], "relayed": []}
    step = 0
    try:
        for _ in range(10):  # warm up both paths
            step += 1
            await _patch_roundtrip(local, local_info, step)
            await _patch_roundtrip(relayed, relayed_info, step)
        while len(times["relayed"]) < round_trips:
            for name, session, info in (("local", local, local_info), ("relayed", relayed, relayed_info)):
                for _ in range(BLOCK):
                    step += 1
                    times[name].append(await _patch_roundtrip(session, info, step))
    finally:
        await local.close()
        await relayed.close()
    result = {}
    for name, values in times.items():
        result[f"{name}_p50"] = 1000 * percentile(values, 50)
        result[f"{name}_p90"] = 1000 * percentile(values, 90)
    return result


async def hop_costs(redis_url: str, count: int = 300) -> dict[str, float]:
    """p50 of send + receive there and back, per transport, in this process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ["BOKEHSERVER_REDIS_URL"] = redis_url
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from channels.layers import get_channel_layer

    from bokehserver.relay_wire import LayerWire, wire_for

    async def there_and_back(wire: Any) -> float:
        here, there = await wire.new_channel(), await wire.new_channel()

        async def echo() -> None:
            while True:
                await wire.send_batch(here, await wire.receive(there))

        task = asyncio.create_task(echo())
        times = []
        message = {"type": "bench", "frames": ['{"msgtype": "OK"}', "{}", "{}"]}
        for _ in range(count):
            start = time.perf_counter()
            await wire.send(there, message)
            await wire.receive(here)
            times.append(time.perf_counter() - start)
        task.cancel()
        return 1000 * percentile(times, 50)

    layer = get_channel_layer()
    return {"channels-redis": await there_and_back(LayerWire(layer)), "redis lists": await there_and_back(wire_for(layer))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--round-trips", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--on-loop", action="store_true", help="run app code on the event loop (no thread pool)")
    args = parser.parse_args()
    extra = ["--app-code-threads", "0"] if args.on_loop else []
    env = {"BOKEHSERVER_REDIS_URL": args.redis, "BOKEHSERVER_DB": migrated_database()}
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    for name, p50 in asyncio.run(hop_costs(args.redis)).items():
        print(f"message there and back over {name}: p50 {p50:.2f} ms")
    with running("bokehserver", [*extra, SLIDERS_APP], "/sliders", env) as owner, \
            running("bokehserver", [*extra, SLIDERS_APP], "/sliders", env) as other:
        figures = asyncio.run(latency(owner.url, other.url, args.round_trips))
    print(f"patch round trip, local   p50 {figures['local_p50']:.2f} ms  p90 {figures['local_p90']:.2f} ms")
    print(f"patch round trip, relayed p50 {figures['relayed_p50']:.2f} ms  p90 {figures['relayed_p90']:.2f} ms")
    print(f"relaying adds (p50) {figures['relayed_p50'] - figures['local_p50']:.2f} ms")
    rates = {}
    for procs in (1, 2):
        rates[procs] = r = measure(procs, args.sessions, args.seconds, args.redis, args.on_loop)
        print(f"{procs} worker(s), {args.sessions} sessions: {r['rate']:.0f} round trips/s "
              f"(client CPU {r['client_cpu']:.0f} %, servers' CPU {r['server_cpu']:.0f} %; "
              f"Redis: {r['redis_commands']:.2f} commands per round trip, other users of this Redis included)")
    print(f"2 workers / 1 worker: {rates[2]['rate'] / rates[1]['rate']:.2f}x")

if __name__ == "__main__":
    main()
