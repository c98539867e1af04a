"""The folders of installed Bokeh extensions, as bokeh resolves them when it bundles a page.

A package whose models carry their own BokehJS code (Panel, ipywidgets_bokeh...) ships a
``bokeh.ext.json`` beside its ``__init__.py`` and a bundle in ``dist/`` (or where its
``package.json`` points). bokeh finds them in private code (``bokeh.embed.bundle._bundle_extensions``)
and records each folder in ``extension_dirs``, the table bokeh serve's
``/static/extensions/<name>/`` handler serves from. On the bokeh versions this was proven on
the same table is read; elsewhere no extension folder is served (the pages then name the
files by their paths on disk, as bokeh's "absolute" resources do).
"""
from __future__ import annotations

import logging
from pathlib import Path

import bokeh.embed.bundle as _bundle
from bokeh.resources import Resources

from .versions import proven

logger = logging.getLogger(__name__)

__all__ = ("extension_artifacts", "extension_folders")


def _usable() -> bool:
    return (proven("extension registry") and hasattr(_bundle, "_bundle_extensions")
            and isinstance(getattr(_bundle, "extension_dirs", None), dict))


def extension_artifacts(minified: bool = True) -> list[Path]:
    """The bundle file of every extension whose models are loaded, as bokeh would put it on a page.

    Resolving them also records each extension's folder (see :func:`extension_folders`).
    """
    if not _usable():
        return []
    resources = Resources(mode="absolute", minified=minified)
    try:
        embeds = _bundle._bundle_extensions(None, resources)
    except ValueError as exc:  # a package with a bokeh.ext.json but no bundle: pages fail on it too
        logger.warning("Bokeh extensions cannot be listed: %s", exc)
        return []
    return [Path(embed.artifact_path) for embed in embeds]


def extension_folders() -> dict[str, Path]:
    """Extension name -> the folder its files are served from (``/static/extensions/<name>/...``)."""
    if not _usable():
        return {}
    if not _bundle.extension_dirs:
        extension_artifacts()
    return dict(_bundle.extension_dirs)
