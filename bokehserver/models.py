"""Session records for inspection (the Django admin): written in the background, never on the hot path."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from django.db import models
from django.db.models import Q

from . import conf

# a process whose records missed this many heartbeats is gone (killed, or its host is)
MISSED_HEARTBEATS = 3


def heartbeat_cutoff() -> datetime:
    """Records last refreshed before this belong to a server process that is gone."""
    interval = conf.get("RECORD_HEARTBEAT_MILLISECONDS") / 1000.0
    return datetime.now(timezone.utc) - timedelta(seconds=MISSED_HEARTBEATS * interval)


class BokehSessionQuerySet(models.QuerySet):
    def live(self) -> BokehSessionQuerySet:
        return self.filter(destroyed_at=None, updated_at__gte=heartbeat_cutoff())

    def ended(self) -> BokehSessionQuerySet:
        return self.filter(Q(destroyed_at__isnull=False) | Q(updated_at__lt=heartbeat_cutoff()))

    def of_gone_processes(self) -> BokehSessionQuerySet:
        """Records still marked live whose process stopped refreshing them."""
        return self.filter(destroyed_at=None, updated_at__lt=heartbeat_cutoff())


class BokehSession(models.Model):
    """One session of one app in one server process, as last reported by that process."""

    session_id = models.CharField(max_length=200, db_index=True)
    app_path = models.CharField(max_length=200, db_index=True)
    host = models.CharField(max_length=200, help_text="Server host name")
    pid = models.IntegerField(help_text="Server process that holds the session")
    connections = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    destroyed_at = models.DateTimeField(null=True, blank=True)

    objects = BokehSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "Bokeh session"
        constraints = [
            models.UniqueConstraint(fields=["app_path", "session_id", "host", "pid"], name="bokehserver_session_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.app_path} {self.session_id[:12]}"

    @property
    def live(self) -> bool:
        return self.destroyed_at is None and not self.process_gone

    @property
    def process_gone(self) -> bool:
        """Marked live, but its process has stopped refreshing it (see RECORD_HEARTBEAT_MILLISECONDS)."""
        return self.destroyed_at is None and self.updated_at < heartbeat_cutoff()
