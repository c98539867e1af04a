"""What session records cost: the hot path's counting, and one record write after a burst.

Counting a message is two ``Traffic`` updates (the session's and the process's). A write after a
burst touches every session that had traffic: it is timed, and its queries counted, for 10, 100
and 1,000 busy sessions, each having passed 1,000 messages since the last write. The database is
a fresh SQLite file migrated for the run (``project.settings``).

    .venv/bin/python bench/record_writes.py [--messages 1000]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


def counting_ns(repeat: int = 1_000_000) -> float:
    """Nanoseconds to count one message, as a connection does (session and process totals)."""
    from bokehserver.traffic import PROCESS, Traffic

    session = Traffic()
    start = time.perf_counter_ns()
    for _ in range(repeat):
        session.received(120)
        PROCESS.received(120)
    return (time.perf_counter_ns() - start) / repeat


async def write_after_burst(sessions: int, messages: int) -> tuple[int, float, int]:
    """(rows written, milliseconds, queries) of the write that follows ``messages`` per session."""
    from bokeh.models import Div
    from django.db import connection

    from bokehserver.asgi import BokehASGI

    app = BokehASGI({"/app": lambda doc: doc.add_root(Div(text="x"))}, record_interval_milliseconds=3_600_000)
    context = app.context_for("/app")
    built = [await context.create_session_if_needed(f"s{n}") for n in range(sessions)]
    await app.records.flush()  # the sessions' first rows (and the heartbeat)
    for session in built:
        for _ in range(messages):
            session.traffic.received(120)
    queries = []
    write = app.records._write

    def counted(*args):
        with connection.execute_wrapper(lambda execute, sql, *args: (queries.append(sql), execute(sql, *args))[1]):
            return write(*args)

    app.records._write = counted
    start = time.perf_counter()
    rows = await app.records.flush()
    elapsed = (time.perf_counter() - start) * 1000.0
    await context.discard_all_sessions()
    return rows, elapsed, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages per session between two writes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BOKEHSERVER_DB"] = str(Path(tmp) / "records.sqlite3")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        print(f"counting one message: {counting_ns():.0f} ns")
        print(f"{'busy sessions':>14} {'rows':>6} {'write ms':>9} {'queries':>8}")
        for sessions in (10, 100, 1000):
            rows, ms, queries = asyncio.run(write_after_burst(sessions, args.messages))
            print(f"{sessions:>14} {rows:>6} {ms:>9.1f} {queries:>8}")


if __name__ == "__main__":
    main()
