"""BokehJS and per-app static files: cached contents, versioned URLs, conditional responses."""
from __future__ import annotations

import hashlib
import mimetypes
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bokeh.settings import settings as bokeh_settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils._os import safe_join

__all__ = ("StaticFile", "append_version", "bokehjs_root", "is_bokehjs_file", "serve_file")

LONG_CACHE = "max-age=315360000, public"


@dataclass(frozen=True)
class StaticFile:
    content: bytes
    content_type: str
    sha512: str

    @property
    def etag(self) -> str:
        return f'"{self.sha512}"'


def bokehjs_root() -> Path:
    """The folder of BokehJS files (``js/``, ``lib/``) shipped in the bokeh package."""
    return Path(bokeh_settings.bokehjs_path())


@lru_cache(maxsize=256)
def _load(path: str, mtime_ns: int) -> StaticFile:
    with open(path, "rb") as f:
        content = f.read()
    content_type, encoding = mimetypes.guess_type(path)
    if path.endswith(".js"):
        content_type = "text/javascript"
    return StaticFile(content, content_type or "application/octet-stream", hashlib.sha512(content).hexdigest())


def load_static(root: Path | str, relative: str) -> StaticFile:
    """Read ``relative`` under ``root`` (cached while unchanged); 404 outside root or missing."""
    try:
        full = safe_join(str(root), relative)
    except Exception:
        raise Http404("not found") from None
    try:
        stat = os.stat(full)
    except OSError:
        raise Http404("not found") from None
    if not os.path.isfile(full):
        raise Http404("not found")
    return _load(full, stat.st_mtime_ns)


def is_bokehjs_file(relative: str) -> bool:
    """Whether ``relative`` names a file of BokehJS (inside its folder)."""
    try:
        load_static(bokehjs_root(), relative)
    except Http404:
        return False
    return True


def append_version(path: str, root: Path | str | None = None, url: str | None = None) -> str:
    """Add ``?v=<sha512>`` to the URL of a file, as bokeh serve's URLs carry (none in dev mode).

    ``path`` is relative to ``root`` (BokehJS's folder by default); ``url`` is the URL to version
    when it is not ``path`` itself.
    """
    url = path if url is None else url
    if bokeh_settings.dev:
        return url
    try:
        return f"{url}?v={load_static(bokehjs_root() if root is None else root, path).sha512}"
    except Http404:
        return url


def serve_file(request: HttpRequest, root: Path | str, relative: str) -> HttpResponse:
    static = load_static(root, relative)
    if request.headers.get("If-None-Match") == static.etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(b"" if request.method == "HEAD" else static.content, content_type=static.content_type)
        response["Content-Length"] = str(len(static.content))
    response["ETag"] = static.etag
    if "v" in request.GET:
        response["Cache-Control"] = LONG_CACHE
    return response
