"""Keeps the BokehSession table in step with the live sessions, off the hot path.

Sessions only mark themselves dirty (a dict write); a worker job writes what changed every
``RECORD_INTERVAL_MILLISECONDS`` in one thread hop. A database error is logged and the
changes are retried at the next flush: the server never waits on, or fails for, the database.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

from . import conf

if TYPE_CHECKING:
    from .session import ServerSession

logger = logging.getLogger(__name__)

__all__ = ("SessionRecords",)


@dataclass
class _Row:
    app_path: str
    session_id: str
    connections: int
    created_at: datetime
    destroyed_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SessionRecords:
    """Pending session records of this process, flushed to the database by the worker."""

    def __init__(self) -> None:
        self._dirty: dict[tuple[str, str], _Row] = {}
        self._created: dict[tuple[str, str], datetime] = {}
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
        self.changed(app_path, session)

    def changed(self, app_path: str, session: ServerSession) -> None:
        key = (app_path, session.id)
        created = self._created.setdefault(key, _now())
        destroyed = _now() if session.destroyed else None
        self._dirty[key] = _Row(app_path, session.id, session.connection_count, created, destroyed)
        if destroyed is not None:
            self._created.pop(key, None)

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def _heartbeat_due(self) -> bool:
        interval = conf.get("RECORD_HEARTBEAT_MILLISECONDS") / 1000.0
        return time.monotonic() - self._last_heartbeat >= interval

    async def flush(self) -> int:
        """Write every pending change, and the heartbeat when due; returns how many rows were written."""
        beat = self._heartbeat_due()
        if not self._dirty and not beat:
            return 0
        rows, self._dirty = self._dirty, {}
        try:
            await sync_to_async(self._write, thread_sensitive=False)(list(rows.values()), beat)
        except Exception as exc:
            for key, row in rows.items():
                self._dirty.setdefault(key, row)
            if not self._failing:
                logger.warning("Could not write %d session records (will retry): %r", len(rows), exc)
            self._failing = True
            return 0
        self._failing = False
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

    def _write(self, rows: list[_Row], heartbeat: bool = False) -> None:
        from django.db import close_old_connections, transaction

        from .models import BokehSession

        close_old_connections()
        try:
            now = _now()
            with transaction.atomic():
                if heartbeat:
                    self._beat(now)
                for row in rows:
                    BokehSession.objects.update_or_create(
                        app_path=row.app_path,
                        session_id=row.session_id,
                        host=self.host,
                        pid=self.pid,
                        defaults={
                            "connections": row.connections,
                            "created_at": row.created_at,
                            "updated_at": now,
                            "destroyed_at": row.destroyed_at,
                        },
                    )
        finally:
            close_old_connections()

    def _beat(self, now: datetime) -> None:
        """Refresh this process's live records; end those of processes that stopped refreshing theirs."""
        from .models import BokehSession

        BokehSession.objects.filter(host=self.host, pid=self.pid, destroyed_at=None).update(updated_at=now)
        gone = BokehSession.objects.of_gone_processes().update(destroyed_at=now, connections=0)
        if gone:
            logger.info("Marked %d session records of server processes that are gone as ended", gone)

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

        alive = []
        for pid in set(BokehSession.objects.filter(host=self.host, destroyed_at=None).values_list("pid", flat=True)):
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except OSError:
                pass
        return (
            BokehSession.objects.filter(host=self.host, destroyed_at=None)
            .exclude(pid__in=alive)
            .update(destroyed_at=_now(), connections=0)
        )
