"""Session records for inspection (the Django admin): written in the background, never on the hot path."""
from __future__ import annotations

from django.db import models


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
        return self.destroyed_at is None
