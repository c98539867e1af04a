"""Bokeh's endpoints: as data, as explicit Django URL patterns, and as the ``urlpatterns`` to include.

``include("bokehserver.urls")`` serves every app under the include point, anywhere in a site's
URLconf (``path("dashboards/", include("bokehserver.urls"))``, or ``path("", ...)`` for bokeh
serve's URLs). Its patterns match only what is served when the request comes (the converters in
``converters.py``), so apps can be chosen at startup (``runbokeh``) and every other path, the
site's ``/`` included, stays the site's. Websockets are routed through the same patterns (see
``routing.py``). ``app_urlpatterns()`` builds explicit patterns for a fixed set of apps instead.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.urls import path, re_path

from . import views
from .converters import register_converters
from .extensions import EXTENSION_NAME

app_name = "bokehserver"

__all__ = ("app_url_path", "app_urlpatterns", "extension_patterns", "per_app_patterns", "toplevel_patterns",
           "urlpatterns", "websocket_routes")

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

# Bokeh extensions' files under the prefix, whatever app is served at its root (bokeh serve's URLs).
extension_patterns: list[tuple[str, str]] = [
    (rf"/static/extensions/(?P<name>{EXTENSION_NAME})/(?P<file_path>.*)", "extension"),
]

_HTTP_VIEWS = {"page": views.page, "index": views.page, "ws": views.websocket_endpoint, "metadata": views.metadata,
               "autoload": views.autoload_js, "static": views.static,
               "extension": views.extension_static}


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
    rows: list[tuple[str, str, str]] = [
        (_join(prefix, suffix), endpoint, prefix.lstrip("/")) for suffix, endpoint in extension_patterns
    ]
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
    """Explicit Django URL patterns for the given app paths and prefix (``ws`` for websocket routing)."""
    patterns: list[Any] = [re_path(r"^favicon\.ico$", views.favicon, name="favicon")]
    for regex, endpoint, app_path in _app_regexes(app_paths, prefix):
        patterns.append(re_path(f"^{regex}$", _HTTP_VIEWS[endpoint], kwargs={"app_path": app_path}))
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


def app_url_path(prefix: str, route: str) -> str:
    """The URL path of the app at ``route``: where the site's URLconf includes ``bokehserver.urls``, else at the root."""
    from django.urls import NoReverseMatch, reverse

    captured = _normalize_prefix(prefix) + ("" if route == "/" else route)
    try:
        return reverse("bokehserver:page", kwargs={"app_path": captured.strip("/")})
    except NoReverseMatch:
        return captured or "/"


register_converters()

urlpatterns = [
    path("<bokeh_favicon:name>", views.favicon, name="favicon"),
    path("<bokeh_app:app_path>ws", views.websocket_endpoint, name="ws"),
    path("<bokeh_app:app_path>metadata", views.metadata, name="metadata"),
    path("<bokeh_app:app_path>autoload.js", views.autoload_js, name="autoload"),
    path("<bokeh_prefix:app_path>static/extensions/<bokeh_extension:name>/<path:file_path>", views.extension_static,
         name="extension_static"),
    path("<bokeh_app:app_path>static/<path:file_path>", views.static, name="app_static"),
    path("<bokeh_prefix:app_path>static/<bokehjs_file:file_path>", views.static, name="static"),
    path("<bokeh_page:app_path>", views.page, name="page"),
    path("<bokeh_index:app_path>", views.page, name="index"),
    path("<bokeh_extra:app_path>", views.page, name="extra"),
]
