"""SessionRecords: the last flush of a shutdown retries a database another process holds locked."""
from __future__ import annotations

import sqlite3
from types import SimpleNamespace

from bokehserver.records import SessionRecords
from bokehserver.traffic import Traffic


def fake_session(session_id: str, *, connections: int, destroyed: bool) -> SimpleNamespace:
    return SimpleNamespace(id=session_id, connection_count=connections, destroyed=destroyed, owner=None,
                           end_status=None, traffic=Traffic())


def locked_then_free(records: SessionRecords, failures: int) -> list[list]:
    """Make the records' writes fail ``failures`` times as a locked SQLite does, then succeed."""
    written: list[list] = []
    attempts = [0]

    def write(rows, *args):
        attempts[0] += 1
        if attempts[0] <= failures:
            raise sqlite3.OperationalError("database is locked")
        written.append(rows)

    records._write = write
    return written


async def test_flush_all_retries_a_locked_database_until_written():
    records = SessionRecords()
    records.changed("/app", fake_session("s1", connections=0, destroyed=True))
    written = locked_then_free(records, failures=3)
    assert await records.flush_all(timeout=30.0)
    assert [row.session_id for row in written[0]] == ["s1"]
    assert records.pending == 0


async def test_flush_all_gives_up_after_its_timeout_and_keeps_the_records(caplog):
    records = SessionRecords()
    records.changed("/app", fake_session("s1", connections=1, destroyed=False))
    locked_then_free(records, failures=10**9)
    assert not await records.flush_all(timeout=0.0)
    assert records.pending == 1
    assert "Gave up writing 1 session records" in caplog.text
