"""Hostile input against the session consumer, in this process: many malformed messages, then count
what escaped and which sessions still hold a connection.

Each round opens a websocket (Channels' communicator, the real consumer and sessions of the sliders
app), sends a random batch of frames of the kinds that broke the consumer before (deep nesting, huge
numbers, headers of every shape, buffers, bytes where text belongs), then disconnects. An escape is
an exception out of the consumer or a close code outside 4000-4999; a leak is a session that still
counts a connection after its socket ended.

    .venv/bin/python bench/fuzz_consumer.py [--messages 100000] [--seed 13]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
SLIDERS = str(ROOT / "examples" / "sliders.py")
MSGTYPES = ["PULL-DOC-REQ", "PUSH-DOC", "PATCH-DOC", "SERVER-INFO-REQ", "ACK", "OK", "ERROR", "NOPE", 7, None]


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 2**70, 1.5, float("inf")])
    if kind == 1:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(8)))
    if kind == 2:
        return rng.randrange(-10, 10)
    if kind == 3:
        return "id"
    if kind == 4:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(_value(rng, depth + 1)): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _frame(rng: random.Random) -> str | bytes:
    kind = rng.randrange(9)
    if kind == 0:
        depth = rng.randrange(1, 5000)
        return "[" * depth + "]" * depth
    if kind == 1:
        return '{"msgid": "x", "msgtype": "PULL-DOC-REQ", "num_buffers": ' + "9" * rng.randrange(4000, 6000) + "}"
    if kind in (2, 3):
        header = {"msgid": rng.choice(["m", 1, None, ""]), "msgtype": rng.choice(MSGTYPES), "num_buffers": rng.choice([0, 1, 3, 10**9, -1, "2"])}
        return json.dumps({k: v for k, v in header.items() if rng.random() < 0.8})
    if kind == 4:
        return json.dumps({"id": rng.choice(["0", 0, None])})
    if kind == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if kind == 6:
        return "{}"
    if kind == 7:
        return json.dumps({"events": [{"kind": "ModelChanged", "model": {"id": "p1"}, "attr": "value", "new": _value(rng)}]})
    return json.dumps(_value(rng), default=str)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


async def run(messages: int, seed: int) -> dict[str, object]:
    import django

    django.setup()
    import logging

    from django.conf import settings

    from bokehserver import conf

    # every round builds a session; the per-app limit would refuse them past 10,000
    settings.BOKEHSERVER = {**settings.BOKEHSERVER, "MAX_SESSIONS_PER_APP": None}
    conf.reset()
    for name in ("bokehserver", "bokeh", "django"):  # one warning per refused socket would dominate the time
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from bokeh.util.token import generate_jwt_token, generate_session_id
    from channels.testing import WebsocketCommunicator
    from django.core.asgi import get_asgi_application

    from bokehserver import registry
    from bokehserver.asgi import BokehASGI, bokeh_asgi_application

    web_app = BokehASGI({"/sliders": SLIDERS}, extra_websocket_origins=["localhost:5006"],
                        unused_session_lifetime_milliseconds=10**9, check_unused_sessions_milliseconds=10**9)
    registry.install(web_app)
    application = bokeh_asgi_application(get_asgi_application())
    rng = random.Random(seed)
    sent = escapes = rounds = 0
    codes: dict[int, int] = {}
    rss_before = None
    started = time.perf_counter()
    while sent < messages:
        token = generate_jwt_token(generate_session_id(signed=False), signed=False)
        comm = WebsocketCommunicator(application, "/sliders/ws", subprotocols=["bokeh", token])
        await comm.connect(timeout=60)
        first = await comm.receive_output(60)  # the ACK's first frame
        if first["type"] != "websocket.send":
            raise RuntimeError(f"a session was refused: {first}")
        if rss_before is None:
            rss_before = rss_mb()
        batch = [_frame(rng) for _ in range(rng.randrange(1, 12))]
        for frame in batch:
            key = "bytes" if isinstance(frame, bytes) else "text"
            await comm.send_input({"type": "websocket.receive", key: frame})
        sent += len(batch)
        rounds += 1
        while not await comm.receive_nothing(timeout=0.01):
            output = await comm.receive_output()
            if output["type"] == "websocket.close":
                code = output.get("code") or 1000
                codes[code] = codes.get(code, 0) + 1
                escapes += not 4000 <= code < 5000
                break
        try:
            await comm.disconnect(timeout=60)
        except Exception as exc:
            escapes += 1
            print(f"escape: {exc!r} after {batch!r:.200}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    sessions = web_app.get_sessions("/sliders")
    leaked = sum(1 for s in sessions if s.connection_count)
    session_count = len(sessions)
    del sessions
    rss_after = rss_mb()
    # the sessions were left unused and expire by the usual rules (here: at once)
    expired = await web_app.context_for("/sliders").cleanup_sessions(0)
    import gc

    gc.collect()
    rss_expired = rss_mb()
    from bokeh.document import Document

    documents = sum(1 for obj in gc.get_objects() if isinstance(obj, Document))
    await web_app.stop()
    return {"messages": sent, "sockets": rounds, "seconds": round(elapsed, 1), "escapes": escapes,
            "sessions": session_count, "sessions_with_a_connection": leaked, "close_codes": dict(sorted(codes.items())),
            "rss_mb_before": round(rss_before or 0, 1), "rss_mb_after": round(rss_after, 1),
            "sessions_expired": expired, "rss_mb_after_expiry": round(rss_expired, 1),
            "documents_alive_after_expiry": documents}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.messages, args.seed)), indent=2))


if __name__ == "__main__":
    main()
