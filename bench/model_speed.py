"""bokeh's own document work, with bokeh's internals and with bokehserver's shortcuts (``_compat``).

In-process, no server: building a document (running the app script and validating it), serializing it
for a PULL-DOC-REPLY, and the document work of one slider round trip (apply the client's PATCH-DOC, run
the app's ``recompute``, serialize the data PATCH-DOC and the OK), which is the floor of a server's
CPU per patch round trip: whatever the server adds comes on top; and the same slider move in a document
of 2,000 models (no callback: applied, then the OK). Each figure is the median of
``--repeat`` timings; the serialized documents are checked equal (ids aside) under both.

    .venv/bin/python bench/model_speed.py [--repeat 15]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import runpy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

APPS = {"sliders": ROOT / "examples" / "sliders.py", "2,000 models": ROOT / "bench" / "apps" / "big_models.py"}


def build(path: Path) -> Any:
    from bokeh.document import Document
    from bokeh.io.doc import set_curdoc

    doc = Document()
    set_curdoc(doc)
    runpy.run_path(str(path), run_name="bokeh_app")
    doc.validate()
    return doc


def pull_content(doc: Any) -> str:
    from bokeh.protocol import Protocol

    return Protocol().create("PULL-DOC-REPLY", "", doc).content_json


def normalized(content: str) -> str:
    names: dict[str, str] = {}
    return re.sub(r'"(p\d+)"', lambda m: '"id%d"' % names.setdefault(m.group(1), len(names)), content)


def median_ms(func: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def patch_round_trips(count: int, app: str = "sliders", slider: str = "amplitude") -> float:
    """Milliseconds of document work per slider round trip on an app (the sliders app: its data comes back)."""
    from bokeh.document.events import ModelChangedEvent
    from bokeh.protocol import Protocol
    from bokeh.protocol.receiver import Receiver

    protocol = Protocol()
    doc = build(APPS[app])
    doc.models.flush_synced()  # as after the page's PULL-DOC-REPLY
    amplitude = doc.get_model_by_name(slider)
    outgoing: list[Any] = []

    class Session:  # receives the document's change events, as ServerSession does
        def _document_patched(self, event: Any) -> None:
            if event.setter is not self:
                outgoing.append(protocol.create("PATCH-DOC", [event]))

    session = Session()
    doc.callbacks.on_change_dispatch_to(session)
    frames = []
    for i in range(count):
        message = protocol.create("PATCH-DOC", [ModelChangedEvent(doc, amplitude, "value", 1 + (i % 40) / 10)])
        frames.append((message.header_json, message.metadata_json, message.content_json))

    async def run() -> float:
        receiver = Receiver(protocol)
        start = time.perf_counter()
        for header, metadata, content in frames:
            await receiver.consume(header)
            await receiver.consume(metadata)
            message = await receiver.consume(content)
            message.apply_to_document(doc, session)
            for reply in outgoing:
                reply.header_json, reply.content_json, [buffer.to_bytes() for buffer in reply.buffers]
            outgoing.clear()
            protocol.create("OK", message.header["msgid"]).header_json
        return (time.perf_counter() - start) * 1000 / count

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    import django

    django.setup()  # installs the shortcuts (bokehserver's AppConfig.ready)
    from bokehserver._compat import bokehs_own_models

    for path in APPS.values():  # imports and first-call caches, outside the timings
        pull_content(build(path))
    patch_round_trips(200)
    rows = []
    for label, path in APPS.items():
        repeat = max(3, args.repeat // 5) if label != "sliders" else args.repeat
        figures: dict[str, list[float]] = {}
        contents = {}
        for variant in ("bokeh", "bokehserver"):  # build() under each keeps the shortcuts' effects apart
            with bokehs_own_models() if variant == "bokeh" else contextlib.nullcontext():
                doc = build(path)
                contents[variant] = normalized(pull_content(doc))
                figures[variant] = [median_ms(lambda: build(path), repeat), median_ms(lambda: pull_content(doc), repeat)]
        if contents["bokeh"] != contents["bokehserver"]:
            raise SystemExit(f"{label}: the serialized documents differ")
        rows.append((f"{label}: build + validate", *[figures[v][0] for v in ("bokeh", "bokehserver")]))
        rows.append((f"{label}: serialize (PULL-DOC-REPLY)", *[figures[v][1] for v in ("bokeh", "bokehserver")]))
    theirs, ours = [], []
    for _ in range(3):  # interleaved, so that drift of the machine hits both alike
        with bokehs_own_models():
            theirs.append(patch_round_trips(1000))
        ours.append(patch_round_trips(1000))
    rows.append(("sliders: document work per patch round trip", statistics.median(theirs), statistics.median(ours)))
    theirs, ours = [], []
    for _ in range(3):
        with bokehs_own_models():
            theirs.append(patch_round_trips(200, "2,000 models", "w1"))
        ours.append(patch_round_trips(200, "2,000 models", "w1"))
    rows.append(("2,000 models: a slider move applied, OK out", statistics.median(theirs), statistics.median(ours)))
    print(f"{'ms (median)':<48} {'bokeh':>10} {'bokehserver':>12} {'ratio':>7}")
    for label, bokeh_ms, ours_ms in rows:
        print(f"{label:<48} {bokeh_ms:>10.2f} {ours_ms:>12.2f} {ours_ms / bokeh_ms:>7.2f}")


if __name__ == "__main__":
    main()
