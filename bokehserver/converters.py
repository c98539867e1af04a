"""Path converters that match only what the web application serves, when the request comes.

Django tries a site's URL patterns in order and takes the first that matches; a converter
whose ``to_python`` raises ``ValueError`` makes its pattern not match. With these, the patterns
of ``include("bokehserver.urls")`` claim the paths of the served apps (which ``runbokeh`` may
choose after the URLconf was imported) and nothing else: the site's own URLs, ``APPEND_SLASH``
redirects and static files are left alone, wherever the include sits.

A captured path is relative to the include point and includes ``BOKEHSERVER["PREFIX"]``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import register_converter

from . import registry
from .extensions import EXTENSION_NAME, extension_folder
from .static import is_bokehjs_file

if TYPE_CHECKING:
    from .asgi import BokehASGI

__all__ = ("register_converters",)

# "sliders/", "pre/sliders/" or "" (an app at the include point): what precedes "ws", "metadata"...
_DIRECTORY = r"(?:[^/]+/)*?"
# "sliders", "sliders/", "pre/sliders" or "": a page, the index, an extra pattern.
_PAGE = r"(?:[^/]+(?:/[^/]+)*/?)?"


class _Served:
    """Base: ``to_python`` keeps the captured path (without its trailing slash) if ``serves`` it."""

    regex = _DIRECTORY

    def serves(self, web_app: BokehASGI, path: str) -> bool:
        raise NotImplementedError

    def to_python(self, value: str) -> str:
        path = value.strip("/")
        if not self.serves(registry.get_web_application(), path):
            raise ValueError(f"bokehserver serves nothing at {path!r}")
        return path

    def to_url(self, value: str) -> str:
        path = str(value).strip("/")
        return f"{path}/" if path and self.regex == _DIRECTORY else path


class AppConverter(_Served):
    """The path of a served app, before one of its endpoints (``ws``, ``metadata``, ``static/``...)."""

    def serves(self, web_app: BokehASGI, path: str) -> bool:
        route = web_app.route_for(path)
        return route is not None and web_app.context_for(route) is not None


class PageConverter(AppConverter):
    """The path of a served app's page."""

    regex = _PAGE


class PrefixConverter(_Served):
    """The prefix itself, before ``static/`` (BokehJS at bokeh serve's URLs)."""

    def serves(self, web_app: BokehASGI, path: str) -> bool:
        return web_app.route_for(path) == "/"


class IndexConverter(PrefixConverter):
    """The prefix itself, as the index of apps (unless disabled, or an app is served there)."""

    regex = _PAGE

    def serves(self, web_app: BokehASGI, path: str) -> bool:
        return web_app.use_index and super().serves(web_app, path)


class ExtraConverter(_Served):
    """A path that one of the web application's ``extra_patterns`` matches."""

    regex = _PAGE

    def serves(self, web_app: BokehASGI, path: str) -> bool:
        route = web_app.route_for(path)
        return route is not None and web_app.resolve_extra(route) is not None


class BokehJSFileConverter:
    """The name of a file of BokehJS (``js/bokeh.min.js``): anything else is not ours."""

    regex = r".+"

    def to_python(self, value: str) -> str:
        if not is_bokehjs_file(value):
            raise ValueError(f"{value!r} is not a BokehJS file")
        return value

    def to_url(self, value: str) -> str:
        return str(value)


class ExtensionConverter:
    """The name of a Bokeh extension whose files are served (``panel``): anything else is not ours."""

    regex = EXTENSION_NAME

    def to_python(self, value: str) -> str:
        if extension_folder(value) is None:
            raise ValueError(f"{value!r} is not a loaded Bokeh extension")
        return value

    def to_url(self, value: str) -> str:
        return str(value)


class FaviconConverter:
    """``favicon.ico``, unless ``ICO_PATH`` is ``"none"``."""

    regex = r"favicon\.ico"

    def to_python(self, value: str) -> str:
        if registry.get_web_application().ico_path == "none":
            raise ValueError("the favicon is disabled")
        return value

    def to_url(self, value: str) -> str:
        return "favicon.ico"


CONVERTERS = {
    "bokeh_app": AppConverter,
    "bokeh_page": PageConverter,
    "bokeh_prefix": PrefixConverter,
    "bokeh_index": IndexConverter,
    "bokeh_extra": ExtraConverter,
    "bokehjs_file": BokehJSFileConverter,
    "bokeh_extension": ExtensionConverter,
    "bokeh_favicon": FaviconConverter,
}
_registered = False


def register_converters() -> None:
    """Register the converters with Django once per process (the URLconf calls this on import)."""
    global _registered
    if not _registered:
        for name, converter in CONVERTERS.items():
            register_converter(converter, name)
        _registered = True
