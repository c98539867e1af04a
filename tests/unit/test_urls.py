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


def _included_at(mount):
    """A site's URLconf: bokehserver included at ``mount`` first, then the admin and the site's own ``/``."""
    from django.contrib import admin
    from django.http import HttpResponse
    from django.urls import include, path

    module = ModuleType(f"site_urls_{mount.strip('/') or 'root'}")
    module.urlpatterns = [
        path(mount, include("bokehserver.urls")),
        path("admin/", admin.site.urls),
        path("", lambda request: HttpResponse("the site's home"), name="home"),
    ]
    return module


@pytest.fixture(params=["", "dashboards/"], ids=["at-root", "under-dashboards"])
def site(request, settings, web_app, bk):
    """A site with its own ``/`` and admin, bokehserver included at the root or under dashboards/.

    At the root the index of apps is off: with it, bokehserver answers ``/`` when included first.
    """
    settings.ROOT_URLCONF = _included_at(request.param)
    web_app({"/app": bk.slider_doc, "/other": bk.div_doc}, use_index=bool(request.param))
    return "/" + request.param


async def test_append_slash_redirects_still_work_with_bokehserver_included(site, async_client):
    response = await async_client.get("/admin")
    assert response.status_code == 301
    assert response["Location"] == "/admin/"


async def test_the_sites_home_page_stays_the_sites(site, async_client):
    response = await async_client.get("/")
    assert response.content == b"the site's home"


async def test_apps_index_and_bokehjs_are_served_under_the_include_point(site, async_client, settings):
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.AppDirectoriesFinder"]
    page = await async_client.get(f"{site}app")
    assert page.status_code == 200
    assert f'src="{site}static/js/bokeh.min.js?v=' in page.content.decode()
    assert (await async_client.get(f"{site}static/js/bokeh.min.js")).status_code == 200
    assert (await async_client.get(f"{site}app/metadata")).json()["url"] == "/app"
    if site != "/":
        index = await async_client.get(site)
        assert index.status_code == 200
        assert f'href="{site}app"' in index.content.decode()


@pytest.mark.parametrize("path", ["/static/admin/css/base.css", "/nothing-here", "/app/nope", "/favicon.ico"])
def test_paths_bokehserver_does_not_serve_are_not_claimed(settings, path):
    from bokehserver import registry
    from bokehserver.asgi import BokehASGI

    settings.ROOT_URLCONF = _included_at("")
    app = BokehASGI({"/app": lambda doc: None}, ico_path="none")
    registry.install(app)
    try:
        with pytest.raises(Resolver404):
            resolve(path)
    finally:
        registry.uninstall(app)


async def test_websockets_find_the_app_where_the_urlconf_put_it(site, asgi_application, bk):
    comm = WebsocketCommunicator(asgi_application, f"{site}app/ws", subprotocols=["bokeh", bk.make_token()])
    connected, subprotocol = await comm.connect()
    assert (connected, subprotocol) == (True, "bokeh")
    assert (await bk.read_message(comm)).msgtype == "ACK"
    await comm.disconnect()


async def test_a_websocket_outside_the_include_point_is_closed_4004(settings, web_app, asgi_application, bk):
    settings.ROOT_URLCONF = _included_at("dashboards/")
    web_app({"/app": bk.slider_doc})
    comm = WebsocketCommunicator(asgi_application, "/app/ws", subprotocols=["bokeh", bk.make_token()])
    assert (await comm.connect())[0] is True
    code, reason = await bk.read_close(comm)
    assert code == 4004 and "/app/ws" in reason


async def test_other_websockets_go_to_the_sites_own_routing(web_app, bk):
    from django.core.asgi import get_asgi_application

    from bokehserver.routing import bokeh_asgi_application

    seen = []

    async def site_websockets(scope, receive, send):
        seen.append(scope["path"])
        await send({"type": "websocket.close", "code": 4321})

    web_app({"/app": bk.slider_doc})
    application = bokeh_asgi_application(get_asgi_application(), other_websockets=site_websockets)
    chat = WebsocketCommunicator(application, "/chat/ws")
    assert await chat.connect() == (False, 4321)
    bokeh = WebsocketCommunicator(application, "/app/ws", subprotocols=["bokeh", bk.make_token()])
    assert await bokeh.connect() == (True, "bokeh")
    await bokeh.disconnect()
    assert seen == ["/chat/ws"]


@pytest.mark.urls("tests.unit.reports_urls")
async def test_values_a_site_captures_around_the_include_reach_the_app(web_app, async_client, open_session, bk):
    from bokeh.models import Div
    from bokeh.util.token import get_session_id

    def report(doc):
        doc.add_root(Div(name="pk", text=repr(doc.session_context.request.url_kwargs)))

    app = web_app({"/report": report})
    response = await async_client.get("/reports/7/report")
    assert response.status_code == 200
    [session] = app.get_sessions("/report")
    assert session.document.select_one({"name": "pk"}).text == "{'pk': 7}"
    assert (await async_client.get("/reports/7/report/metadata")).status_code == 200
    assert (await async_client.get("/reports/x/report")).status_code == 404
    # a session the websocket builds (its token made elsewhere) sees them too
    token = bk.make_token()
    comm = await open_session("/reports/8/report", token)
    built = app.get_session("/report", get_session_id(token))
    assert built.document.select_one({"name": "pk"}).text == "{'pk': 8}"
    await comm.disconnect()
