"""Bokeh's endpoints: as data, as explicit Django URL patterns, and as the generic ``urlpatterns``.

``include("bokehserver.urls")`` at the site root matches the endpoints generically and resolves
them against the installed apps and prefix, so apps can be chosen at startup (``runbokeh``)
after the URLconf was imported; include it last, as its page pattern answers every path an app
may own (404 when none does). ``app_urlpatterns()`` builds explicit patterns for a fixed set of
apps instead, for sites that want nothing generic at their root.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.urls import re_path

from . import views

app_name = "bokehserver"

__all__ = ("app_urlpatterns", "per_app_patterns", "toplevel_patterns", "urlpatterns", "websocket_routes")

# Endpoints under each app's path, as (regex after the app path, endpoint name).
per_app_patterns: list[tuple[str, str]] = [
    (r"/?", "page"),
    (r"/ws", "ws"),
    (r"/metadata", "metadata"),
    (r"/autoload\.js", "autoload"),
    (r"/static/(?P<file_path>.*)", "static"),
]

# Endpoints under the prefix itself; the favicon is never prefixed.
toplevel_patterns: list[tuple[str, str]] = [
    (r"/?", "index"),
    (r"/static/(?P<file_path>.*)", "static"),
]

_HTTP_VIEWS = {"page": views.page, "index": views.page, "metadata": views.metadata, "autoload": views.autoload_js,
               "static": views.static}


def _normalize_prefix(prefix: str | None) -> str:
    prefix = (prefix or "").strip("/")
    return f"/{prefix}" if prefix else ""


def _join(base: str, suffix: str) -> str:
    """A Django regex (no leading slash) for ``suffix`` under the URL path ``base``."""
    base = base.lstrip("/")
    if base:
        return re.escape(base) + suffix
    return "" if suffix == "/?" else suffix[1:]


def _app_regexes(app_paths: Iterable[str], prefix: str | None) -> list[tuple[str, str, str]]:
    """(full regex without the leading slash, endpoint, captured app path) for every endpoint."""
    prefix = _normalize_prefix(prefix)
    rows: list[tuple[str, str, str]] = []
    app_paths = set(app_paths)
    for app_path in sorted(app_paths, key=len, reverse=True):
        base = prefix + ("" if app_path == "/" else app_path)
        for suffix, endpoint in per_app_patterns:
            rows.append((_join(base, suffix), endpoint, base.lstrip("/")))
    for suffix, endpoint in toplevel_patterns:
        if "/" in app_paths:
            break  # the root app owns the prefix root and its static folder
        rows.append((_join(prefix, suffix), endpoint, prefix.lstrip("/")))
    return rows


def app_urlpatterns(app_paths: Iterable[str], prefix: str | None = "") -> list[Any]:
    """Explicit Django URL patterns for the given app paths and prefix (websockets excluded)."""
    patterns: list[Any] = [re_path(r"^favicon\.ico$", views.favicon, name="favicon")]
    for regex, endpoint, app_path in _app_regexes(app_paths, prefix):
        if endpoint == "ws":
            continue
        view = _HTTP_VIEWS[endpoint]
        patterns.append(re_path(f"^{regex}$", view, kwargs={"app_path": app_path}))
    return patterns


def websocket_routes(app_paths: Iterable[str], prefix: str | None = "") -> list[Any]:
    """Channels websocket routes (``<prefix>/<app>/ws``) for the given app paths."""
    from .consumers import SessionConsumer

    consumer = SessionConsumer.as_asgi()
    return [
        re_path(f"^{regex}$", consumer, kwargs={"app_path": app_path})
        for regex, endpoint, app_path in _app_regexes(app_paths, prefix)
        if endpoint == "ws"
    ]


urlpatterns = [
    re_path(r"^favicon\.ico$", views.favicon, name="favicon"),
    re_path(r"^(?P<app_path>.*)/autoload\.js$", views.autoload_js, name="autoload"),
    re_path(r"^(?P<app_path>.*)/metadata$", views.metadata, name="metadata"),
    re_path(r"^(?:(?P<app_path>.*?)/)?static/(?P<file_path>.*)$", views.static, name="static"),
    re_path(r"^(?P<app_path>.*)$", views.page, name="page"),
]
