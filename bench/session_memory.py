"""Memory of a session without its websocket: ours against a bare bokeh Document of the same app.

Tells the per-session cost of the server's own objects apart from the per-connection cost
(daphne, autobahn, the Channels consumer) that bench/run.py's memory scenario also includes.

    .venv/bin/python bench/session_memory.py [--sessions 200] [--app examples/sliders.py]
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


def rss_kib() -> float:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss / 1024


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--app", default=str(ROOT / "examples" / "sliders.py"))
    args = parser.parse_args()
    import django

    django.setup()
    from bokeh.document import Document

    from bokehserver.application_context import ApplicationContext
    from bokehserver.registry import build_application

    context = ApplicationContext(build_application(args.app), url="/bench")
    await context.create_session_if_needed("warm-up")
    before = rss_kib()
    for i in range(args.sessions):
        await context.create_session_if_needed(f"s{i}")
    ours = (rss_kib() - before) / args.sessions

    app = build_application(args.app)
    documents = [Document()]
    app.initialize_document(documents[0])
    before = rss_kib()
    for _ in range(args.sessions):
        documents.append(Document())
        app.initialize_document(documents[-1])
    bare = (rss_kib() - before) / args.sessions
    print(f"per session, no connection: bokehserver {ours:.0f} KiB, bare bokeh Document {bare:.0f} KiB "
          f"({ours - bare:+.0f} KiB of server objects)")


if __name__ == "__main__":
    asyncio.run(main())
