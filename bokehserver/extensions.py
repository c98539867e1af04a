"""Files of Bokeh extensions (Panel and every package whose models bring their own BokehJS code).

Pages load an extension's bundle, and the extension loads its further files (styles, lazily
bundled modules, images), from ``<prefix>/static/extensions/<name>/<file>``: the URLs bokeh
serve answers, so extensions that build their own URLs (Panel does) find them here too. Files
come from the folder bokeh records for each extension whose models are loaded, with the same
versioned URLs and caching as BokehJS.
"""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePath

from django.http import Http404, HttpRequest, HttpResponse

from ._compat.extensions import extension_artifacts, extension_folders
from .static import append_version, serve_file

__all__ = ("EXTENSION_NAME", "extension_folder", "extension_url", "serve_extension_file")

# an extension's name is the name of its top-level Python package
EXTENSION_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(EXTENSION_NAME)


def extension_folder(name: str) -> Path | None:
    """The folder of extension ``name``'s files, or None when no loaded model belongs to such an extension."""
    if not _NAME.fullmatch(name):
        return None
    folder = extension_folders().get(name)
    if folder is None:  # models loaded since the last page was bundled
        extension_artifacts()
        folder = extension_folders().get(name)
    return folder


def extension_url(file: str) -> str | None:
    """``extensions/<name>/<file>?v=<sha512>`` for a file inside an extension's folder, else None."""
    for name, folder in extension_folders().items():
        root = f"{folder}{os.sep}"
        if file.startswith(root):
            relative = PurePath(file[len(root):]).as_posix()
            return append_version(relative, folder, f"extensions/{name}/{relative}")
    return None


def serve_extension_file(request: HttpRequest, name: str, file_path: str) -> HttpResponse:
    """Answer a request for one of extension ``name``'s files; 404 for anything outside its folder."""
    folder = extension_folder(name)
    if folder is None:
        raise Http404("no such Bokeh extension")
    return serve_file(request, folder, file_path)
