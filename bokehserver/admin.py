"""The admin's view of Bokeh sessions: who uses each one, its live state, ending it, and a live dashboard.

Viewing needs the view permission on Bokeh sessions; ending one needs
``bokehserver.end_bokehsession``; deleting a record of a live session is refused (end it first),
so no session goes on running without a record. Staff only, as everything in the admin.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from . import registry
from .control import expire_sessions
from .inspection import read_session
from .models import MISSED_HEARTBEATS, BokehSession
from .records import Ended

END_REASON = "ended by an administrator"


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


def _shown(session_ids: list[str]) -> str:
    return ", ".join(session_id[:12] for session_id in session_ids[:10])


@admin.register(BokehSession)
class BokehSessionAdmin(admin.ModelAdmin):
    list_display = ("app_path", "session_id", "username", "status", "is_live", "connections", "messages",
                    "last_activity", "created_at", "server")
    list_filter = (LiveFilter, "status", "app_path", ("user", admin.RelatedOnlyFieldListFilter), "host")
    search_fields = ("session_id", "username")
    ordering = ("-last_activity", "-created_at")
    readonly_fields = [f.name for f in BokehSession._meta.fields]
    actions = ["end_sessions", "delete_selected"]
    change_form_template = "admin/bokehserver/bokehsession/change_form.html"
    change_list_template = "admin/bokehserver/bokehsession/change_list.html"

    @admin.display(boolean=True, description="live")
    def is_live(self, obj: BokehSession) -> bool:
        return obj.live

    @admin.display(description="messages in / out")
    def messages(self, obj: BokehSession) -> str:
        return f"{obj.messages_in} / {obj.messages_out}"

    @admin.display(description="server (host:pid)")
    def server(self, obj: BokehSession) -> str:
        return obj.server

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """Records of live sessions cannot be deleted (the session would run on unseen): end it first."""
        if obj is not None and obj.live:
            return False
        return super().has_delete_permission(request, obj)

    def has_end_permission(self, request: Any) -> bool:
        return request.user.has_perm("bokehserver.end_bokehsession")

    @admin.action(description="End selected sessions (their pages show why; a reload starts a new session)",
                  permissions=["end"])
    def end_sessions(self, request: Any, queryset: Any) -> None:
        records = list(queryset)
        gone = [record for record in records if record.process_gone]
        if gone:
            messages.info(request, f"{len(gone)} sessions had already ended: their server processes are gone "
                                   f"(no heartbeat for {MISSED_HEARTBEATS} intervals) "
                                   f"({_shown([r.session_id for r in gone])}).")
        result = async_to_sync(expire_sessions)([record for record in records if not record.process_gone],
                                                registry.installed_web_application(), reason=END_REASON,
                                                status=Ended.ADMIN)
        messages.success(request, f"Ended {result.ended} sessions ({result.here} in this process, "
                                  f"{result.elsewhere} in other processes).")
        if result.unreachable:
            messages.warning(request, f"{len(result.unreachable)} sessions could not be reached: their server "
                                      f"processes did not answer ({_shown(result.unreachable)}).")

    @admin.action(description="Delete selected records of ended sessions", permissions=["delete"])
    def delete_selected(self, request: Any, queryset: Any) -> Any:
        """Django's delete action for the records of ended sessions only; live ones are kept, and said so."""
        live = list(queryset.live().values_list("pk", "session_id"))
        if live:
            messages.warning(request, f"{len(live)} records of live sessions are not deleted: end the sessions "
                                      f"first ({_shown([session_id for _, session_id in live])}).")
        ended = queryset.exclude(pk__in=[pk for pk, _ in live])
        return django_delete_selected(self, request, ended) if ended.exists() else None

    def change_view(self, request: Any, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        """The record, with the live state read from the process that holds the session."""
        extra = dict(extra_context or {})
        record = self.get_object(request, object_id)
        if record is not None and record.live:
            live = async_to_sync(read_session)(record, registry.installed_web_application())
            for connection in (live.state or {}).get("connections", ()):
                connection["opened"] = datetime.fromtimestamp(connection["opened_at"], timezone.utc)
            extra["live_state"] = live
            extra["app_url"] = self._app_url(record.app_path)
        extra["can_end"] = record is not None and record.live and self.has_end_permission(request)
        return super().change_view(request, object_id, form_url, extra)

    @staticmethod
    def _app_url(app_path: str) -> str:
        from .urls import app_url_path

        web_app = registry.installed_web_application()
        return app_url_path(web_app.prefix if web_app is not None else "", app_path)

    def get_urls(self) -> list[Any]:
        dashboard = path("dashboard/", self.admin_site.admin_view(self.dashboard_view),
                         name="bokehserver_bokehsession_dashboard")
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request: Any) -> Any:
        """The admin page that embeds the live dashboard app (served by this server, staff only)."""
        from bokeh.embed import server_document

        from .dashboard import dashboard_path

        if not self.has_view_permission(request):
            raise PermissionDenied
        route = dashboard_path()
        web_app = registry.installed_web_application()
        served = route is not None and (web_app is None or web_app.context_for(route) is not None)
        script = server_document(request.build_absolute_uri(self._app_url(route))) if served else None
        context = {**self.admin_site.each_context(request), "title": "Bokeh server dashboard",
                   "opts": self.model._meta, "dashboard_script": script}
        return TemplateResponse(request, "admin/bokehserver/bokehsession/dashboard.html", context)
