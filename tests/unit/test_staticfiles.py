"""BokehJS as the site's static files: the finder, collectstatic with hashed names, WhiteNoise, DEBUG serving."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from bokeh.settings import settings as bokeh_settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import AsyncClient

from bokehserver.staticfiles import FINDER, BokehJSFinder, serve_static_in_debug

BOKEHJS = Path(bokeh_settings.bokehjs_path()) / "js"
FINDERS = ["django.contrib.staticfiles.finders.AppDirectoriesFinder", FINDER]


def test_finder_offers_the_minified_bundles_under_bokehserver_js():
    finder = BokehJSFinder()
    listed = sorted(name for name, storage in finder.list([]))
    assert "bokeh.min.js" in listed and "bokeh-widgets.min.js" in listed
    assert all(name.endswith(".min.js") for name in listed)
    assert finder.find("bokehserver/js/bokeh.min.js") == str(BOKEHJS / "bokeh.min.js")
    assert finder.find("bokehserver/js/bokeh.min.js", find_all=True) == [str(BOKEHJS / "bokeh.min.js")]
    assert finder.find("js/bokeh.min.js") == []
    assert finder.find("bokehserver/js/compiler.js") == []


async def test_collectstatic_with_hashed_names_gives_pages_the_hashed_bokehjs(settings, tmp_path, web_app, bk):
    settings.STATIC_ROOT = str(tmp_path)
    settings.STATICFILES_FINDERS = FINDERS
    manifest = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
    settings.STORAGES = manifest
    call_command("collectstatic", interactive=False, verbosity=0)
    folder = tmp_path / "bokehserver" / "js"
    [hashed] = [p.name for p in folder.iterdir() if re.fullmatch(r"bokeh\.min\.[0-9a-f]{12}\.js", p.name)]
    assert (folder / hashed).read_bytes() == (BOKEHJS / "bokeh.min.js").read_bytes()

    settings.DEBUG = False
    settings.STORAGES = {**manifest}  # a fresh storage, reading the manifest collectstatic wrote
    web_app({"/app": bk.slider_doc})
    page = (await AsyncClient().get("/app")).content.decode()
    assert f'src="/static/bokehserver/js/{hashed}"' in page


async def test_whitenoise_serves_bokehjs_collected_next_to_the_admins_files(settings, tmp_path, web_app, bk):
    pytest.importorskip("whitenoise")
    settings.STATIC_ROOT = str(tmp_path)
    settings.STATICFILES_FINDERS = FINDERS
    call_command("collectstatic", interactive=False, verbosity=0)
    settings.MIDDLEWARE = ["whitenoise.middleware.WhiteNoiseMiddleware", *settings.MIDDLEWARE]
    web_app({"/app": bk.slider_doc})
    client = AsyncClient()
    page = (await client.get("/app")).content.decode()
    assert 'src="/static/bokehserver/js/bokeh.min.js"' in page
    bokehjs = await client.get("/static/bokehserver/js/bokeh.min.js")
    assert bokehjs.status_code == 200
    assert b"".join(bokehjs.streaming_content) == (BOKEHJS / "bokeh.min.js").read_bytes()
    bokehjs.close()
    admin_css = await client.get("/static/admin/css/base.css")
    assert admin_css.status_code == 200
    admin_css.close()


async def _get(application, path):
    sent = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [], "root_path": "", "scheme": "http", "server": ("127.0.0.1", 8000)}
    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("debug", [True, False])
async def test_static_files_are_served_in_debug_and_others_reach_the_application(settings, debug):
    settings.DEBUG = debug
    settings.STATICFILES_FINDERS = FINDERS
    reached = []

    async def site(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"site"})

    application = serve_static_in_debug(site)
    status, body = await _get(application, "/static/bokehserver/js/bokeh.min.js")
    assert (status, body[:20] == (BOKEHJS / "bokeh.min.js").read_bytes()[:20]) == ((200, True) if debug else (299, False))
    status, _ = await _get(application, "/static/admin/css/base.css")
    assert status == (200 if debug else 299)
    assert (await _get(application, "/static/js/bokeh.min.js"))[0] == 299  # bokeh serve's URL: the app answers
    assert (await _get(application, "/sliders"))[0] == 299
    assert reached[-2:] == ["/static/js/bokeh.min.js", "/sliders"]


def test_check_warns_when_staticfiles_runs_without_the_finder(settings):
    from bokehserver.checks import check_staticfiles

    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.AppDirectoriesFinder"]
    [warning] = check_staticfiles()
    assert warning.id == "bokehserver.W002" and FINDER in warning.hint
    settings.STATICFILES_FINDERS = FINDERS
    assert check_staticfiles() == []
    assert finders.find("bokehserver/js/bokeh.min.js")
