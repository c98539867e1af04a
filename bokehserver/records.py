"""Keeps the BokehSession table in step with the live sessions, off the hot path.

Sessions only mark themselves dirty when they are made, change connections or end (a dict
write); messages only bump integer counters (``traffic.py``). A worker job writes, every
``RECORD_INTERVAL_MILLISECONDS``, the dirty rows and the sessions that had traffic since their
last write, in one thread hop and a fixed handful of bulk queries however many messages passed:
the write rate is bounded by the interval, not by the traffic. A database error is logged and
the changes are retried at the next flush: the server never waits on, or fails for, the database.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from . import conf

if TYPE_CHECKING:
    from .session import ServerSession

logger = logging.getLogger(__name__)

__all__ = ("Ended", "SessionRecords")

# rows per INSERT/UPDATE statement
BATCH_SIZE = 500


class Ended:
    """How a session ended, as records store it (the values of ``models.Status``)."""

    LIVE = "live"
    ADMIN = "admin"
    UNUSED = "unused"
    LOGOUT = "logout"
    LOGIN = "login"
    STOPPED = "stopped"
    GONE = "gone"
    ENDED = "ended"


@dataclass
class _Row:
    app_path: str
    session_id: str
    owner: str | None
    connections: int
    traffic: tuple[int, int, int, int]
    last_activity: float
    created_at: datetime
    destroyed_at: datetime | None = None
    status: str = Ended.LIVE


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


class SessionRecords:
    """Pending session records of this process, flushed to the database by the worker."""

    def __init__(self) -> None:
        self._dirty: dict[tuple[str, str], _Row] = {}
        self._created: dict[tuple[str, str], datetime] = {}
        self._live: dict[tuple[str, str], ServerSession] = {}
        self._written_activity: dict[tuple[str, str], float] = {}
        self.host = socket.gethostname()
        self._failing = False
        self._last_heartbeat = float("-inf")

    @property
    def pid(self) -> int:
        """This process's id, read when used: the records may have been made before a fork."""
        return os.getpid()

    def created(self, app_path: str, session: ServerSession) -> None:
        key = (app_path, session.id)
        self._created[key] = _now()
        self._live[key] = session
        self.changed(app_path, session)

    def changed(self, app_path: str, session: ServerSession) -> None:
        key = (app_path, session.id)
        created = self._created.setdefault(key, _now())
        self._dirty[key] = self._row(app_path, session, created)
        if session.destroyed:
            self._created.pop(key, None)
            self._live.pop(key, None)

    @staticmethod
    def _row(app_path: str, session: Any, created: datetime) -> _Row:
        destroyed = _now() if session.destroyed else None
        status = (session.end_status or Ended.ENDED) if destroyed else Ended.LIVE
        traffic = session.traffic
        return _Row(app_path, session.id, session.owner, session.connection_count, traffic.snapshot(),
                    traffic.last_activity, created, destroyed, status)

    def _active(self) -> dict[tuple[str, str], _Row]:
        """Fresh rows of the live sessions that changed or whose traffic moved since their last write."""
        rows = {}
        for key, session in self._live.items():
            if key in self._dirty or session.traffic.last_activity > self._written_activity.get(key, 0.0):
                rows[key] = self._row(key[0], session, self._created[key])
        return rows

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def _heartbeat_due(self) -> bool:
        interval = conf.get("RECORD_HEARTBEAT_MILLISECONDS") / 1000.0
        return time.monotonic() - self._last_heartbeat >= interval

    async def flush(self) -> int:
        """Write every pending change, and the heartbeat when due; returns how many rows were written."""
        beat = self._heartbeat_due()
        active = self._active()
        if not self._dirty and not active and not beat:
            return 0
        rows, self._dirty = {**self._dirty, **active}, {}
        try:
            first = {key for key in rows if key not in self._written_activity}
            await sync_to_async(self._write, thread_sensitive=False)(list(rows.values()), beat, first)
        except Exception as exc:
            for key, row in rows.items():
                self._dirty.setdefault(key, row)
            if not self._failing:
                logger.warning("Could not write %d session records (will retry): %r", len(rows), exc)
            self._failing = True
            return 0
        self._failing = False
        for key, row in rows.items():
            if row.destroyed_at is None:
                self._written_activity[key] = row.last_activity
            else:
                self._written_activity.pop(key, None)
        if beat:
            self._last_heartbeat = time.monotonic()
        return len(rows)

    async def flush_all(self, timeout: float) -> bool:
        """Flush, retrying a failing database (another process holding its lock) for up to
        ``timeout`` seconds; True once every pending record is written."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.05
        while True:
            await self.flush()
            if not self._dirty:
                return True
            if loop.time() + delay > deadline:
                logger.warning("Gave up writing %d session records after %.1f s", len(self._dirty), timeout)
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _write(self, rows: list[_Row], heartbeat: bool = False, first_writes: set[tuple[str, str]] | None = None) -> None:
        from django.db import close_old_connections, transaction

        close_old_connections()
        try:
            now = _now()
            with transaction.atomic():
                if heartbeat:
                    self._beat(now)
                if rows:
                    self._upsert(rows, now, first_writes if first_writes is not None else
                                 {(row.app_path, row.session_id) for row in rows})
        finally:
            close_old_connections()

    def _upsert(self, rows: list[_Row], now: datetime, first_writes: set[tuple[str, str]]) -> None:
        """Insert or update every row in bulk (INSERT ... ON CONFLICT DO UPDATE): one statement per batch.

        The owner is looked up (one query) only for rows written for the first time; later writes
        leave the user and username as they were.
        """
        from .models import BokehSession

        users = _users({row.owner for row in rows
                        if row.owner is not None and (row.app_path, row.session_id) in first_writes})
        records = []
        for row in rows:
            record = BokehSession(
                app_path=row.app_path, session_id=row.session_id, host=self.host, pid=self.pid,
                connections=row.connections, created_at=row.created_at, last_activity=_when(row.last_activity),
                updated_at=now, destroyed_at=row.destroyed_at, status=row.status,
            )
            record.messages_in, record.messages_out, record.bytes_in, record.bytes_out = row.traffic
            record.user_id, record.username = users.get(row.owner or "", (None, ""))
            records.append(record)
        BokehSession.objects.bulk_create(records, batch_size=BATCH_SIZE, update_conflicts=True,
                                         unique_fields=_UNIQUE_FIELDS, update_fields=_UPDATED_FIELDS)

    def _beat(self, now: datetime) -> None:
        """Refresh this process's live records; end those of processes that stopped refreshing theirs;
        delete records that ended longer ago than RECORD_RETENTION_SECONDS."""
        from .models import BokehSession

        BokehSession.objects.filter(host=self.host, pid=self.pid, destroyed_at=None).update(updated_at=now)
        gone = BokehSession.objects.of_gone_processes().update(destroyed_at=now, connections=0, status=Ended.GONE)
        if gone:
            logger.info("Marked %d session records of server processes that are gone as ended", gone)
        retention = conf.get("RECORD_RETENTION_SECONDS")
        if retention is not None:
            pruned, _ = BokehSession.objects.expired_records(retention).delete()
            if pruned:
                logger.info("Deleted %d session records that ended more than %d s ago", pruned, retention)

    async def close_orphans(self) -> None:
        """Mark records of processes that stopped as destroyed, in a thread (a server's start job)."""
        try:
            closed = await sync_to_async(self.close_orphans_sync, thread_sensitive=False)()
        except Exception as exc:
            logger.warning("Could not tidy session records of stopped processes: %r", exc)
            return
        if closed:
            logger.info("Marked %d session records of stopped server processes as destroyed", closed)

    def close_orphans_sync(self) -> int:
        """Mark this host's records of processes that are gone as destroyed (called at startup)."""
        from django.db import close_old_connections

        close_old_connections()
        try:
            return self._close_orphans()
        finally:
            close_old_connections()  # runs on a worker thread that may end with the loop: leave nothing open

    def _close_orphans(self) -> int:
        from .models import BokehSession

        dead = []
        for pid in set(BokehSession.objects.filter(host=self.host, destroyed_at=None).values_list("pid", flat=True)):
            try:
                os.kill(pid, 0)
            except OSError:
                dead.append(pid)
        if not dead:
            return 0
        # only the processes found dead: records written meanwhile (this process's first ones) stay live
        return (
            BokehSession.objects.filter(host=self.host, destroyed_at=None, pid__in=dead)
            .update(destroyed_at=_now(), connections=0, status=Ended.GONE)
        )


_UNIQUE_FIELDS = ["app_path", "session_id", "host", "pid"]
_UPDATED_FIELDS = ["connections", "messages_in", "messages_out", "bytes_in", "bytes_out", "last_activity",
                   "updated_at", "destroyed_at", "status"]


def _users(owners: set[str]) -> dict[str, tuple[Any, str]]:
    """Owner id -> (user pk, username) for the owners that still exist, in one query."""
    if not owners:
        return {}
    from django.contrib.auth import get_user_model

    model = get_user_model()
    pks = {}
    for owner in owners:
        try:
            pks[model._meta.pk.to_python(owner)] = owner
        except Exception:
            logger.debug("Session owner %r is not a primary key of %s", owner, model.__name__)
    found = model._default_manager.filter(pk__in=list(pks)).values_list("pk", model.USERNAME_FIELD)
    return {str(pk): (pk, str(name)) for pk, name in found}
