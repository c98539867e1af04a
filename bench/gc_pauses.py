"""How long a full garbage collection holds the event loop with N sessions open.

A full (generation 2) collection walks every tracked object in the process while the loop waits.
Each variant runs in a fresh process: Django set up, N sessions of an app built in-process, then
full collections timed (median of 5).

    .venv/bin/python bench/gc_pauses.py [--sessions 300] [--app examples/sliders.py]

Variants: bokehserver as it serves (startup objects frozen by ``heap.freeze_startup_objects``, each session by
``heap.freeze_later``, empty container defaults made on first read); without the freeze; and with neither, bokeh's own
model internals (what a bokeh serve process walks).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

VARIANTS = {
    "bokehserver": "startup objects and sessions frozen, lazy container defaults",
    "no-freeze": "lazy container defaults, nothing frozen",
    "bokeh-models": "bokeh's own model internals, nothing frozen",
}


async def measure(variant: str, sessions: int, app: str) -> dict[str, float]:
    import django

    # CPython 3.12.1 counts a few hundred objects of its own as frozen after any collection, even
    # with nothing frozen: count from there
    gc.unfreeze()
    gc.collect()
    uncounted = gc.get_freeze_count()
    django.setup()
    from bokehserver import heap
    from bokehserver._compat import bokehs_own_models
    from bokehserver.application_context import ApplicationContext
    from bokehserver.registry import build_application

    if variant == "bokehserver":
        heap.freeze_startup_objects()
    context = ApplicationContext(build_application(app), url="/bench")
    if variant == "bokeh-models":
        with bokehs_own_models():
            for i in range(sessions):
                await context.create_session_if_needed(f"s{i}")
    else:
        for i in range(sessions):
            await context.create_session_if_needed(f"s{i}")
    gc.collect()
    pauses = []
    for _ in range(5):
        start = time.perf_counter()
        gc.collect()
        pauses.append(time.perf_counter() - start)
    return {"pause_ms": statistics.median(pauses) * 1e3, "walked": len(gc.get_objects()), "frozen": gc.get_freeze_count() - uncounted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--app", default=str(ROOT / "examples" / "sliders.py"))
    parser.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(asyncio.run(measure(args.variant, args.sessions, args.app))))
        return
    print(f"full collection with {args.sessions} sessions of {Path(args.app).name} open (median of 5)")
    print(f"{'variant':<14} {'pause ms':>9} {'objects walked':>15} {'frozen':>8}  what")
    for variant, what in VARIANTS.items():
        done = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--sessions", str(args.sessions), "--app", args.app],
            capture_output=True, text=True, check=True,
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{variant:<14} {figures['pause_ms']:>9.1f} {figures['walked']:>15,} {figures['frozen']:>8,}  {what}")


if __name__ == "__main__":
    main()
