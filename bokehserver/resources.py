"""Where a page loads BokehJS from: the site's static files, or this server's own ``static/`` URLs.

Pages use the site's ``STATIC_URL`` when ``BokehJSFinder`` is configured (so no URL of the site
is claimed); otherwise, and for unminified BokehJS, bokeh serve's URLs under the prefix:
``<include point><prefix>/static/js/bokeh.min.js?v=<sha>``. ``BOKEH_RESOURCES=cdn`` or
``inline`` is honoured as by bokeh serve. Bokeh extensions' bundles load from
``<include point><prefix>/static/extensions/<name>/`` (see ``extensions.py``).
"""
from __future__ import annotations

import os
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from bokeh.embed.bundle import URL, Bundle, bundle_for_objs_and_resources
from bokeh.model import Model
from bokeh.resources import Resources
from bokeh.settings import settings as bokeh_settings

from .extensions import extension_url
from .static import append_version, bokehjs_root
from .staticfiles import STATIC_PREFIX, uses_staticfiles

if TYPE_CHECKING:
    from .asgi import BokehASGI

__all__ = ("bokehjs_bundle",)

# (resources' settings) -> (the registered model classes it was computed for, bokeh's bundle)
_bundles: dict[tuple[Any, ...], tuple[tuple[type[Model], ...], Bundle]] = {}


def _bokehs_bundle(mode: str) -> Bundle:
    """bokeh's bundle of every registered model for ``Resources(mode=mode)``, computed once per model set.

    With no objects given, bokeh bundles what every registered model class asks for (extensions'
    scripts, ``__javascript__``, ``__css__``, compiled ``__implementation__``): the same for every
    page until a class is registered or replaced (an app defining models), or bokeh's settings
    change; either makes a new one. Computing it was ~15 % of an app page's CPU.
    """
    resources = Resources(mode=mode)
    key = (mode, resources.mode, resources.dev, resources.minified, resources.log_level, resources.root_dir,
           resources.version, resources.root_url, str(resources.base_dir))
    classes = tuple(Model.model_class_reverse_map.values())  # held, so no id is reused
    found = _bundles.get(key)
    if found is None or found[0] != classes:
        found = _bundles[key] = (classes, bundle_for_objs_and_resources(None, resources))
    bundle = found[1]
    return Bundle(bundle.js_files, bundle.js_raw, bundle.css_files, bundle.css_raw, bundle.hashes)  # copies


def _static_url(relative: str) -> str | None:
    """The site's static URL of a BokehJS file the finder serves, or None."""
    folder, _, name = relative.rpartition("/")
    if folder != "js" or not name.endswith(".min.js") or not uses_staticfiles():
        return None
    from django.contrib.staticfiles.storage import staticfiles_storage

    return staticfiles_storage.url(f"{STATIC_PREFIX}/{name}")


def bokehjs_bundle(web_app: BokehASGI, mount: str = "/", absolute_url: str | None = None) -> Bundle:
    """The scripts and styles of BokehJS for a page of an app included at ``mount``.

    ``absolute_url`` (``scheme://host``) makes the URLs absolute, for pages of other sites.
    """
    mode = bokeh_settings.resources(default="server")
    if mode not in ("server", "server-dev"):
        return _bokehs_bundle(mode)
    files = _bokehs_bundle("absolute-dev" if mode == "server-dev" else "absolute")
    root = f"{bokehjs_root()}{os.sep}"  # the folder the "absolute" files are in
    own_static = f"{mount.rstrip('/')}{web_app.prefix}/static/"

    def url(location: object) -> URL:
        text = str(location)
        if text.startswith(root):
            relative = PurePath(text[len(root):]).as_posix()
            found = _static_url(relative) or own_static + append_version(relative)
        else:
            extension = extension_url(text)
            if extension is None:
                return URL(text)  # a URL a model asks for
            found = own_static + extension
        return URL(urljoin(absolute_url, found) if absolute_url else found)

    return Bundle(
        js_files=[url(f) for f in files.js_files],
        js_raw=files.js_raw,
        css_files=[url(f) for f in files.css_files],
        css_raw=files.css_raw,
        hashes=files.hashes,
    )
