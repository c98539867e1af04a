"""Session records for inspection (the Django admin): written in the background, never on the hot path."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.db import models
from django.db.models import Q

from . import conf

# a process whose records missed this many heartbeats is gone (killed, or its host is)
MISSED_HEARTBEATS = 3


def heartbeat_cutoff() -> datetime:
    """Records last refreshed before this belong to a server process that is gone."""
    interval = conf.get("RECORD_HEARTBEAT_MILLISECONDS") / 1000.0
    return datetime.now(timezone.utc) - timedelta(seconds=MISSED_HEARTBEATS * interval)


class Status(models.TextChoices):
    """How a session ended (or that it has not): the admin filters on it."""

    LIVE = "live", "live"
    ENDED_BY_ADMIN = "admin", "ended by an administrator"
    EXPIRED_UNUSED = "unused", "expired unused"
    ENDED_BY_LOGOUT = "logout", "ended by logout"
    LOGIN_INVALID = "login", "ended: login no longer valid"
    SERVER_STOPPED = "stopped", "ended with its server"
    PROCESS_GONE = "gone", "ended with its process (gone)"
    ENDED = "ended", "ended"


class BokehSessionQuerySet(models.QuerySet):
    def live(self) -> BokehSessionQuerySet:
        return self.filter(destroyed_at=None, updated_at__gte=heartbeat_cutoff())

    def ended(self) -> BokehSessionQuerySet:
        return self.filter(Q(destroyed_at__isnull=False) | Q(updated_at__lt=heartbeat_cutoff()))

    def of_gone_processes(self) -> BokehSessionQuerySet:
        """Records still marked live whose process stopped refreshing them."""
        return self.filter(destroyed_at=None, updated_at__lt=heartbeat_cutoff())

    def expired_records(self, retention_seconds: float) -> BokehSessionQuerySet:
        """Records of sessions that ended more than ``retention_seconds`` ago (pruned by the heartbeat)."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=retention_seconds)
        return self.filter(destroyed_at__lt=cutoff)


class BokehSession(models.Model):
    """One session of one app in one server process, as last reported by that process."""

    session_id = models.CharField(max_length=200, db_index=True)
    app_path = models.CharField(max_length=200, db_index=True)
    host = models.CharField(max_length=200, help_text="Server host name")
    pid = models.IntegerField(help_text="Server process that holds the session")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="bokeh_sessions", help_text="Whose request made the session")
    username = models.CharField(max_length=150, blank=True, default="", db_index=True,
                                help_text="The owner's username when the session was made (kept if the user goes)")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.LIVE, db_index=True)
    connections = models.IntegerField(default=0)
    messages_in = models.BigIntegerField(default=0, help_text="Bokeh messages received from browsers")
    messages_out = models.BigIntegerField(default=0, help_text="Bokeh messages sent to browsers")
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    last_activity = models.DateTimeField(null=True, blank=True, db_index=True,
                                         help_text="Last message in or out, or connection opened or closed")
    updated_at = models.DateTimeField(help_text="Last written by its server process (the heartbeat)")
    destroyed_at = models.DateTimeField(null=True, blank=True)

    objects = BokehSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-last_activity", "-created_at"]
        verbose_name = "Bokeh session"
        permissions = [("end_bokehsession", "Can end live Bokeh sessions")]
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

    @property
    def server(self) -> str:
        return f"{self.host}:{self.pid}"
