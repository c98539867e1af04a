"""What running sync app code off the loop costs an app that does no database work.

Times ``with_document_locked`` on a session for a trivial change, with the app code on the
session's thread (what the server does) and on the loop itself (what bokeh serve does).

    .venv/bin/python bench/app_code_overhead.py [--calls 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    import django

    django.setup()
    from bokeh.application import Application
    from bokeh.application.handlers import FunctionHandler
    from bokeh.models import Slider

    from bokehserver.application_context import ApplicationContext

    context = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Slider(start=0, end=10, value=1, name="s")))), url="/o")
    session = await context.create_session_if_needed("overhead")
    slider = session.document.select_one({"name": "s"})

    def change() -> None:
        slider.value = (slider.value + 1) % 10

    results = {}
    for name, run in (("on the loop", session.with_document_locked_on_loop), ("on a pool thread", session.with_document_locked)):
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(args.calls // 5):
                await run(change)
            samples.append((time.perf_counter() - start) / (args.calls // 5) * 1e6)
        results[name] = statistics.median(samples)
    for name, us in results.items():
        print(f"{name:<24} {us:7.1f} µs per locked change")
    print(f"cost of the thread hop: {results['on a pool thread'] - results['on the loop']:.1f} µs per call")
    await context.discard_all_sessions()
    await context.worker.stop()


if __name__ == "__main__":
    asyncio.run(main())
