"""BokehJS through Django's staticfiles: a finder, and static files served under DEBUG as runserver does.

With ``"bokehserver.staticfiles.BokehJSFinder"`` in ``STATICFILES_FINDERS``, BokehJS's bundles
are static files of the site like any other (``bokehserver/js/bokeh.min.js``): ``runserver``,
``collectstatic``, ``ManifestStaticFilesStorage`` and WhiteNoise serve them where the site's
``STATIC_URL`` says, and pages load them from there.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from django.apps import apps
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

from . import conf
from .static import bokehjs_root
from .types import ASGIApp, Receive, Scope, Send

__all__ = ("FINDER", "STATIC_PREFIX", "BokehJSFinder", "serve_static_in_debug", "uses_staticfiles")

FINDER = "bokehserver.staticfiles.BokehJSFinder"
# BokehJS's js/ folder as static files: bokehserver/js/bokeh.min.js
STATIC_PREFIX = "bokehserver/js"


def _bundles(folder: str) -> list[str]:
    """The minified bundles pages load (not the unminified ones, whose source maps are not shipped)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(name for name in names if name.startswith("bokeh") and name.endswith(".min.js"))


class BokehJSFinder(BaseFinder):
    """Finds BokehJS's minified bundles as ``bokehserver/js/<name>``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.folder = str(bokehjs_root() / "js")
        self.storage = FileSystemStorage(location=self.folder)
        self.storage.prefix = STATIC_PREFIX

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        find_all = find_all or kwargs.get("all", False)
        directory, _, name = path.rpartition("/")
        found = self.storage.path(name) if directory == STATIC_PREFIX and name in _bundles(self.folder) else None
        if find_all:
            return [found] if found else []
        return found or []

    def list(self, ignore_patterns: Any) -> Any:
        for name in _bundles(self.folder):
            yield name, self.storage


def uses_staticfiles() -> bool:
    """Whether pages load BokehJS from the site's static files (the finder is configured)."""
    return apps.is_installed("django.contrib.staticfiles") and FINDER in conf.site("STATICFILES_FINDERS")


def serve_static_in_debug(application: ASGIApp) -> ASGIApp:
    """Serve ``STATIC_URL`` files found by the finders before ``application``, with DEBUG, as runserver does.

    A path under ``STATIC_URL`` that no finder knows goes on to ``application``, where bokeh
    serve's own BokehJS URLs (``/static/js/...``) are answered when bokehserver sits at the root.
    """
    return _serve_static(application, lambda: conf.site("DEBUG"))


def serve_static_files(application: ASGIApp) -> ASGIApp:
    """Serve ``STATIC_URL`` files found by the finders whatever DEBUG says: ``runbokeh`` is a server
    of its own, as ``bokeh serve`` is, and its pages need BokehJS without a WhiteNoise or a proxy."""
    return _serve_static(application, lambda: True)


def _serve_static(application: ASGIApp, enabled: Callable[[], Any]) -> ASGIApp:
    from django.contrib.staticfiles import finders
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    handler: list[ASGIApp] = []  # built on first use: it checks STATIC_URL when built

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and enabled() and apps.is_installed("django.contrib.staticfiles"):
            static_path = urlparse(conf.site("STATIC_URL") or "").path
            path = scope.get("path", "")
            if static_path.startswith("/") and static_path != "/" and path.startswith(static_path):
                if finders.find(path[len(static_path):]):
                    if not handler:
                        handler.append(ASGIStaticFilesHandler(application))
                    await handler[0](scope, receive, send)
                    return
        await application(scope, receive, send)

    serve.wrapped = application  # type: ignore[attr-defined]  (what it serves besides static files)
    return serve
