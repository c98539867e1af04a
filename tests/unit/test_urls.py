"""The endpoints as data and as explicit Django and Channels routes, with the prefix applied."""
from __future__ import annotations

from types import ModuleType

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import Resolver404, resolve

from bokehserver import urls, views
from bokehserver.urls import app_urlpatterns, websocket_routes


def _conf(app_paths, prefix):
    module = ModuleType(f"urls_{len(list(app_paths))}_{prefix}")
    module.urlpatterns = app_urlpatterns(app_paths, prefix)
    return module


@pytest.mark.parametrize(("path", "view", "app_path"), [
    ("/pre/sliders", views.page, "pre/sliders"),
    ("/pre/sliders/", views.page, "pre/sliders"),
    ("/pre/sliders/metadata", views.metadata, "pre/sliders"),
    ("/pre/sliders/autoload.js", views.autoload_js, "pre/sliders"),
    ("/pre/sliders/static/js/x.js", views.static, "pre/sliders"),
    ("/pre/", views.page, "pre"),
    ("/pre/static/js/bokeh.min.js", views.static, "pre"),
    ("/favicon.ico", views.favicon, None),
])
def test_explicit_patterns_apply_the_prefix(path, view, app_path):
    match = resolve(path, urlconf=_conf(["/sliders"], "/pre/"))
    assert match.func is view
    assert match.kwargs.get("app_path") == app_path


@pytest.mark.parametrize("path", ["/sliders", "/pre/other", "/static/js/bokeh.min.js"])
def test_explicit_patterns_claim_nothing_else(path):
    with pytest.raises(Resolver404):
        resolve(path, urlconf=_conf(["/sliders"], "/pre"))


def test_root_app_owns_the_prefix_root():
    patterns = app_urlpatterns(["/"], "")
    assert [p.pattern.regex.pattern for p in patterns].count("^$") == 1
    assert resolve("/", urlconf=_conf(["/"], "")).func is views.page
    assert resolve("/static/js/bokeh.min.js", urlconf=_conf(["/"], "")).func is views.static


def test_endpoint_tables_name_every_bokeh_serve_endpoint():
    assert {name for _, name in urls.per_app_patterns} == {"page", "ws", "metadata", "autoload", "static"}
    assert {name for _, name in urls.toplevel_patterns} == {"index", "static"}


async def test_explicit_websocket_routes_reach_the_consumer(web_app, bk):
    web_app({"/app": bk.slider_doc}, prefix="/pre")
    router = URLRouter(websocket_routes(["/app"], "/pre"))
    comm = WebsocketCommunicator(router, "/pre/app/ws", subprotocols=["bokeh", bk.make_token()])
    connected, subprotocol = await comm.connect()
    assert connected and subprotocol == "bokeh"
    ack = await bk.read_message(comm)
    assert ack.header["msgtype"] == "ACK"
    await comm.disconnect()
