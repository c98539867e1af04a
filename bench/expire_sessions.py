"""Event-loop stall while 200 unused sessions expire at once.

Builds N sessions of an example app in-process, marks them expired, runs the cleanup job, and
measures the loop's lag with a 5 ms ticker meanwhile. ``--baseline`` also destroys N documents
the way bokeh serve does (``Document.destroy``, one ``gc.collect()`` each) for comparison.

    .venv/bin/python bench/expire_sessions.py [--sessions 200] [--app examples/sliders.py] [--baseline]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


async def measure_lag(work, tick_s: float = 0.005) -> tuple[float, float]:
    """Run ``work()`` while a ticker records the worst lateness; return (worst lag s, work s)."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    stop = asyncio.Event()

    async def ticker():
        nonlocal worst
        while not stop.is_set():
            expected = loop.time() + tick_s
            await asyncio.sleep(tick_s)
            worst = max(worst, loop.time() - expected)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return worst, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--app", default=str(ROOT / "examples" / "sliders.py"))
    parser.add_argument("--baseline", action="store_true", help="also time bokeh's Document.destroy per session")
    args = parser.parse_args()

    import django

    django.setup()
    from bokehserver.application_context import ApplicationContext
    from bokehserver.registry import build_application

    ctx = ApplicationContext(build_application(args.app), url="/bench")
    for i in range(args.sessions):
        session = await ctx.create_session_if_needed(f"s{i}")
        session.request_expiration()
    worst, elapsed = await measure_lag(lambda: ctx.cleanup_sessions(15000))
    assert not ctx.sessions, "every session should have expired"
    print(f"bokehserver: expired {args.sessions} sessions in {elapsed * 1000:.0f} ms; "
          f"longest event-loop stall {worst * 1000:.1f} ms")

    if args.baseline:
        from bokeh.document import Document

        app = build_application(args.app)
        receiver = object()
        docs = []
        for _ in range(args.sessions):
            doc = Document()
            app.initialize_document(doc)
            doc.callbacks.on_change_dispatch_to(receiver)
            docs.append(doc)

        async def destroy_like_bokeh_serve():
            for doc in docs:
                doc.destroy(receiver)  # what bokeh serve's ServerSession.destroy calls: gc.collect() inside
                await asyncio.sleep(0)

        worst_b, elapsed_b = await measure_lag(destroy_like_bokeh_serve)
        print(f"Document.destroy per session (bokeh serve's way): {elapsed_b * 1000:.0f} ms; "
              f"longest event-loop stall {worst_b * 1000:.1f} ms")
    await ctx.worker.stop(timeout=1.0)


if __name__ == "__main__":
    asyncio.run(main())
