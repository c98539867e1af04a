"""The admin's live dashboard: a Bokeh app of bokehserver's own, served by the same server.

Sessions and connections per app, messages per second, event loop lag and memory of every server
process, refreshed every second from ``inspection.read_processes``. It is served at
``DASHBOARD_PATH`` to active staff with view permission on Bokeh sessions (page and websocket
alike, by the access rules), and embedded in the admin's dashboard page.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from bokeh.application import Application
from bokeh.application.handlers import FunctionHandler
from bokeh.document import Document, without_document_lock

from . import conf
from .access import Rule

__all__ = ("ACCESS_RULE", "REFRESH_MILLISECONDS", "dashboard_path", "with_dashboard")

REFRESH_MILLISECONDS = 1000
# points kept per line: five minutes at one a second
HISTORY = 300
ACCESS_RULE = Rule("staff", permissions=("bokehserver.view_bokehsession",))
TOTALS_NAME = "bokehserver-dashboard-totals"
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def dashboard_path() -> str | None:
    """The app path of the dashboard ("/..."), or None when DASHBOARD_PATH is not set."""
    path = conf.get("DASHBOARD_PATH")
    return "/" + str(path).strip("/") if path else None


def with_dashboard(apps: Mapping[str, Any], access: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``apps`` and ``access`` with the dashboard app and its staff-only rule added when it is configured."""
    path = dashboard_path()
    if path is None:
        return dict(apps), dict(access or {})
    return {**apps, path: Application(FunctionHandler(_build))}, {**(access or {}), path: ACCESS_RULE}


def _build(doc: Document) -> None:
    _Dashboard(doc)


class _Dashboard:
    """One viewer's dashboard document and the figures it last drew."""

    def __init__(self, doc: Document) -> None:
        from bokeh.layouts import column
        from bokeh.models import ColumnDataSource, DataTable, Div, TableColumn
        from bokeh.plotting import figure

        self.doc = doc
        self.totals = Div(name=TOTALS_NAME, text="Waiting for the first figures…")
        self.apps = ColumnDataSource({"worker": [], "app": [], "sessions": [], "connections": []})
        table = DataTable(source=self.apps, height=180, width=760, index_position=None, columns=[
            TableColumn(field="worker", title="worker (host:pid)"), TableColumn(field="app", title="app"),
            TableColumn(field="sessions", title="sessions"), TableColumn(field="connections", title="connections"),
        ])
        self.plots = {
            key: figure(title=title, x_axis_type="datetime", height=200, width=760, tools="", toolbar_location=None)
            for key, title in (("rate", "Messages per second"), ("lag", "Event loop lag (ms)"),
                               ("memory", "Resident memory (MiB)"))
        }
        self.lines: dict[str, Any] = {}
        self.previous: dict[str, tuple[float, int]] = {}
        self._line(f"{socket.gethostname()}:{os.getpid()}")  # this process always reports: plots never start empty
        doc.title = "Bokeh server dashboard"
        doc.add_root(column(self.totals, table, *self.plots.values()))
        doc.add_periodic_callback(self.refresh, REFRESH_MILLISECONDS)

    @without_document_lock
    async def refresh(self) -> None:
        """Ask every process for its figures (without holding the document), then draw them."""
        from . import registry
        from .inspection import read_processes

        web_app = registry.installed_web_application()
        if web_app is None:
            return
        figures = await read_processes(web_app)
        await self.doc.session_context.with_locked_document(lambda doc: self.draw(figures))

    def draw(self, figures: list[dict[str, Any]]) -> None:
        rows: dict[str, list[Any]] = {"worker": [], "app": [], "sessions": [], "connections": []}
        sessions = connections = 0
        rate_total = 0.0
        for figure_ in figures:
            worker = str(figure_.get("worker"))
            for app, counts in sorted(figure_.get("apps", {}).items()):
                rows["worker"].append(worker)
                rows["app"].append(app)
                rows["sessions"].append(counts["sessions"])
                rows["connections"].append(counts["connections"])
                sessions += counts["sessions"]
                connections += counts["connections"]
            rate = self._rate(worker, float(figure_["time"]), int(figure_["messages"]))
            rate_total += rate
            lag = figure_.get("loop_lag_ms")
            self._line(worker).stream({
                "time": [datetime.fromtimestamp(figure_["time"], timezone.utc)], "rate": [rate],
                "lag": [float("nan") if lag is None else lag], "memory": [figure_["memory_bytes"] / 2**20],
            }, rollover=HISTORY)
        self.apps.data = rows
        self.totals.text = (f"<b>{len(figures)}</b> workers · <b>sessions: {sessions}</b> · "
                            f"<b>connections: {connections}</b> · <b>{rate_total:.1f}</b> messages per second")

    def _rate(self, worker: str, now: float, messages: int) -> float:
        before = self.previous.get(worker)
        self.previous[worker] = (now, messages)
        if before is None or now <= before[0]:
            return 0.0
        return max(0.0, (messages - before[1]) / (now - before[0]))

    def _line(self, worker: str) -> Any:
        """The data source of ``worker``'s lines, drawn on every plot the first time it reports."""
        source = self.lines.get(worker)
        if source is None:
            from bokeh.models import ColumnDataSource

            source = self.lines[worker] = ColumnDataSource({"time": [], "rate": [], "lag": [], "memory": []})
            color = COLORS[(len(self.lines) - 1) % len(COLORS)]
            for key, plot in self.plots.items():
                plot.line("time", key, source=source, color=color, legend_label=worker)
        return source
