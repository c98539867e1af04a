"""Bokeh extensions' files at bokeh serve's URLs: ``<prefix>/static/extensions/<name>/<file>``."""
from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bokeh.core.has_props import _default_resolver
from django.test import AsyncClient

from bokehserver.extensions import extension_folder
from bokehserver.urls import app_urlpatterns

EXTENSION_PKG = Path(__file__).resolve().parents[1] / "extension_pkg"
DIST = EXTENSION_PKG / "tinyext" / "dist"
EXTENSION_SRC = re.compile(r'src="([^"]*/static/extensions/tinyext/tinyext\.min\.js)\?v=([0-9a-f]+)"')


@pytest.fixture
def tinyext(monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    """The test extension's model, loaded for one test (its registration undone after, so that
    pages of other tests bundle no extension)."""
    monkeypatch.syspath_prepend(str(EXTENSION_PKG))
    already = "tinyext" in sys.modules
    import tinyext

    if already:
        _default_resolver.add(tinyext.TinyDiv)
    yield tinyext.TinyDiv
    _default_resolver.remove(tinyext.TinyDiv)


def tiny_doc(doc) -> None:
    import tinyext

    doc.add_root(tinyext.TinyDiv(text="tiny", name="tiny"))


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


async def test_page_loads_the_extension_bundle_versioned_and_the_file_is_served(tinyext, web_app, client, settings):
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.AppDirectoriesFinder"]
    web_app({"/tiny": tiny_doc})

    html = (await client.get("/tiny")).content.decode()

    match = EXTENSION_SRC.search(html)
    assert match, html
    url, version = match.groups()
    assert url == "/static/extensions/tinyext/tinyext.min.js"
    content = (DIST / "tinyext.min.js").read_bytes()
    assert version == hashlib.sha512(content).hexdigest()
    response = await client.get(f"{url}?v={version}")
    assert response.status_code == 200
    assert response.content == content
    assert response["Content-Type"] == "text/javascript"
    assert response["Cache-Control"] == "max-age=315360000, public"
    again = await client.get(f"{url}?v={version}", headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304


async def test_an_extensions_other_files_are_served_from_its_folder(tinyext, web_app, client):
    web_app({"/tiny": tiny_doc})
    response = await client.get("/static/extensions/tinyext/css/tiny.css")
    assert response.status_code == 200
    assert response.content == (DIST / "css" / "tiny.css").read_bytes()
    assert "Cache-Control" not in response  # unversioned: revalidated with its ETag


async def test_extension_files_follow_the_prefix(tinyext, web_app, client):
    web_app({"/tiny": tiny_doc}, prefix="/pre")
    html = (await client.get("/pre/tiny")).content.decode()
    assert 'src="/pre/static/extensions/tinyext/tinyext.min.js?v=' in html
    assert (await client.get("/pre/static/extensions/tinyext/tinyext.min.js")).status_code == 200
    assert (await client.get("/static/extensions/tinyext/tinyext.min.js")).status_code == 404


@pytest.mark.parametrize("path", [
    "/static/extensions/tinyext/../__init__.py",
    "/static/extensions/tinyext/..%2f__init__.py",
    "/static/extensions/tinyext/%2e%2e/__init__.py",
    "/static/extensions/tinyext//etc/passwd",
    "/static/extensions/tinyext/../../../../../../etc/passwd",
    "/static/extensions/tinyext/css",
    "/static/extensions/tinyext/missing.js",
    "/static/extensions/os/os.py",
    "/static/extensions/bokeh/js/bokeh.min.js",
    "/static/extensions/..%2ftinyext/tinyext.min.js",
])
async def test_nothing_outside_an_extensions_folder_is_served(tinyext, web_app, client, path):
    web_app({"/tiny": tiny_doc})
    assert (await client.get("/tiny")).status_code == 200
    response = await client.get(path)
    assert response.status_code == 404
    assert b"import" not in response.content and b"root:" not in response.content


def test_an_unloaded_package_is_no_extension(tinyext):
    assert extension_folder("tinyext") == DIST
    assert extension_folder("os") is None
    assert extension_folder("../tinyext") is None


async def test_explicit_patterns_serve_extension_files_beside_a_root_app(tinyext, web_app, client, settings):
    import types

    urlconf = types.ModuleType("explicit_extension_urls")
    urlconf.urlpatterns = app_urlpatterns(["/"], "")
    sys.modules[urlconf.__name__] = urlconf
    settings.ROOT_URLCONF = urlconf.__name__
    try:
        web_app({"/": tiny_doc})
        response = await client.get("/static/extensions/tinyext/tinyext.min.js")
        assert response.status_code == 200
        assert (await client.get("/static/extensions/tinyext/../__init__.py")).status_code == 404
    finally:
        sys.modules.pop(urlconf.__name__, None)


async def test_autoload_js_loads_the_extension_from_this_server(tinyext, web_app, client):
    web_app({"/tiny": tiny_doc})
    response = await client.get("/tiny/autoload.js", {
        "bokeh-autoload-element": "el", "bokeh-app-path": "/tiny", "bokeh-absolute-url": "http://testserver/tiny",
    })
    assert response.status_code == 200
    js = response.content.decode()
    assert '"http://testserver/static/extensions/tinyext/tinyext.min.js?v=' in js, js[:2000]


async def test_an_extension_without_its_bundle_is_logged_and_not_served(web_app, client, monkeypatch, caplog):
    import bokeh.embed.bundle

    def broken(objs, resources):
        raise ValueError("can't resolve artifact path for 'broken' extension")

    monkeypatch.setattr(bokeh.embed.bundle, "_bundle_extensions", broken)
    monkeypatch.setattr(bokeh.embed.bundle, "extension_dirs", {})
    web_app({"/tiny": tiny_doc_plain})
    response = await client.get("/static/extensions/broken/broken.js")
    assert response.status_code == 404
    assert any("can't resolve artifact path" in r.getMessage() for r in caplog.records)


def tiny_doc_plain(doc) -> None:
    from bokeh.models import Div

    doc.add_root(Div(text="plain"))


def plain_doc(doc) -> None:
    from bokeh.models import Div

    doc.add_root(Div(text="plain"))


async def test_pages_bundle_the_extensions_registered_at_the_time(tinyext, web_app, client):
    web_app({"/plain": plain_doc})
    assert EXTENSION_SRC.search((await client.get("/plain")).content.decode())
    _default_resolver.remove(tinyext)
    try:
        assert not EXTENSION_SRC.search((await client.get("/plain")).content.decode())
    finally:
        _default_resolver.add(tinyext)
    assert EXTENSION_SRC.search((await client.get("/plain")).content.decode())
