"""The admin's view of Bokeh sessions: every live session of every server process, and expiring them."""
from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages

from . import registry
from .control import expire_sessions
from .models import MISSED_HEARTBEATS, BokehSession


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("destroyed", "Ended (destroyed, or its server process is gone)")]

    def queryset(self, request: Any, queryset: Any) -> Any:
        if self.value() == "live":
            return queryset.live()
        if self.value() == "destroyed":
            return queryset.ended()
        return queryset


@admin.register(BokehSession)
class BokehSessionAdmin(admin.ModelAdmin):
    list_display = ("app_path", "session_id", "connections", "is_live", "created_at", "updated_at", "host", "pid")
    list_filter = (LiveFilter, "app_path", "host")
    search_fields = ("session_id", "app_path")
    readonly_fields = [f.name for f in BokehSession._meta.fields]
    actions = ["expire"]

    @admin.display(boolean=True, description="live")
    def is_live(self, obj: BokehSession) -> bool:
        return obj.live

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.action(description="End selected sessions (their pages show why; a reload starts a new session)",
                  permissions=["delete"])
    def expire(self, request: Any, queryset: Any) -> None:
        records = list(queryset)
        gone = [record for record in records if record.process_gone]
        if gone:
            shown = ", ".join(record.session_id[:12] for record in gone[:10])
            messages.info(request, f"{len(gone)} sessions had already ended: their server processes are gone "
                                   f"(no heartbeat for {MISSED_HEARTBEATS} intervals) ({shown}).")
        result = async_to_sync(expire_sessions)([record for record in records if not record.process_gone],
                                                registry.installed_web_application(),
                                                reason="ended by an administrator")
        messages.success(request, f"Ended {result.ended} sessions ({result.here} in this process, "
                                  f"{result.elsewhere} in other processes).")
        if result.unreachable:
            shown = ", ".join(session_id[:12] for session_id in result.unreachable[:10])
            messages.warning(request, f"{len(result.unreachable)} sessions were not ended: their server "
                                      f"processes did not answer ({shown}).")
