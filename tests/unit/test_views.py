"""The HTTP endpoints through Django's AsyncClient: app page, index, prefix, autoload.js, metadata, static, favicon."""
from __future__ import annotations

import hashlib
import logging
import json
import re
from pathlib import Path

import pytest
from bokeh.application import Application
from bokeh.application.handlers import FunctionHandler
from bokeh.models import Div
from bokeh.plotting import curdoc
from bokeh.settings import settings as bokeh_settings
from bokeh.util.token import check_token_signature, get_session_id, get_token_payload
from django.test import AsyncClient

from bokehserver.views import DEFAULT_ICO

SECRET = "x" * 44
DJANGO_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


@pytest.fixture
def slider_server(web_app, bk):
    return web_app({"/app": bk.slider_doc, "/other": bk.div_doc})


def token_of(response) -> str:
    found = TOKEN_RE.findall(response.content.decode())
    assert len(found) == 1, f"expected one token in the page, found {len(found)}"
    return found[0]


def arguments_doc(doc) -> None:
    """Shows the request arguments the session was created with (session_context.request)."""
    request = curdoc().session_context.request
    args = {k: [v.decode() for v in vs] for k, vs in sorted(request.arguments.items())}
    doc.add_root(Div(text=json.dumps(args, sort_keys=True), name="args"))


@pytest.mark.parametrize("path", ["/app", "/app/"])
async def test_page_creates_a_session_and_embeds_its_token(slider_server, client, path):
    response = await client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "embed_items" in html
    assert "<title>slider app</title>" in html
    token = token_of(response)
    session_id = get_session_id(token)
    assert [s.id for s in slider_server.get_sessions("/app")] == [session_id]
    assert slider_server.get_sessions("/other") == []
    root_ids = {m.id for m in slider_server.get_session("/app", session_id).document.roots}
    assert all(f'data-root-id="{rid}"' in html for rid in root_ids)


async def test_page_loads_bokehjs_from_the_sites_static_files(slider_server, client, settings):
    settings.STATIC_URL = "/assets/"
    html = (await client.get("/app")).content.decode()
    assert 'src="/assets/bokehserver/js/bokeh.min.js"' in html
    assert 'src="/assets/bokehserver/js/bokeh-widgets.min.js"' in html
    assert "/static/" not in html


async def test_without_the_finder_the_page_references_versioned_bokehjs(slider_server, client, settings):
    settings.STATICFILES_FINDERS = DJANGO_FINDERS
    html = (await client.get("/app")).content.decode()
    match = re.search(r'src="(/static/js/bokeh\.min\.js)\?v=([0-9a-f]+)"', html)
    assert match, "the page should load BokehJS from this server's /static/ with ?v="
    content = (Path(bokeh_settings.bokehjs_path()) / "js" / "bokeh.min.js").read_bytes()
    assert match.group(2) == hashlib.sha512(content).hexdigest()


async def test_token_carries_headers_cookies_and_arguments(slider_server, client):
    client.cookies["flavour"] = "mint"
    response = await client.get("/app?x=1&x=2&y=", headers={"X-Custom": "hello"})
    assert response.status_code == 200
    payload = get_token_payload(token_of(response))
    assert payload["arguments"] == {"x": [b"1", b"2"], "y": [b""]}
    assert payload["cookies"] == {"flavour": "mint"}
    assert payload["headers"]["X-Custom"] == "hello"
    assert "Cookie" not in payload["headers"]


async def test_token_arguments_include_bokeh_arguments(slider_server, client):
    response = await client.get("/app?bokeh-session-id=given&x=1")
    assert response.status_code == 200
    # bokeh serve puts request.arguments into the token as they came, bokeh-* arguments included
    assert get_token_payload(token_of(response))["arguments"] == {"bokeh-session-id": [b"given"], "x": [b"1"]}


async def test_malformed_token_argument_is_403(slider_server, client):
    response = await client.get("/app?bokeh-token=not-a-token")
    assert response.status_code == 403
    assert slider_server.get_sessions() == []


async def test_session_context_request_sees_the_page_arguments(web_app, client):
    server = web_app({"/args": arguments_doc})
    response = await client.get("/args?x=1&bokeh-session-id=mine")
    assert response.status_code == 200
    session = server.get_session("/args", "mine")
    assert json.loads(session.document.get_model_by_name("args").text) == {"x": ["1"]}


async def test_session_id_argument_reuses_the_session_and_its_token(slider_server, client):
    first = await client.get("/app?bokeh-session-id=chosen")
    second = await client.get("/app?bokeh-session-id=chosen")
    assert first.status_code == second.status_code == 200
    assert get_session_id(token_of(first)) == "chosen"
    assert token_of(second) == token_of(first)
    assert [s.id for s in slider_server.get_sessions("/app")] == ["chosen"]


async def test_session_id_header_is_used(slider_server, client):
    response = await client.get("/app", headers={"Bokeh-Session-Id": "from-header"})
    assert response.status_code == 200
    assert get_session_id(token_of(response)) == "from-header"


async def test_session_id_as_header_and_argument_is_403(slider_server, client, bokeh_warnings):
    response = await client.get("/app?bokeh-session-id=a", headers={"Bokeh-Session-Id": "b"})
    assert response.status_code == 403
    assert b"argument and header" in response.content
    assert slider_server.get_sessions("/app") == []
    assert bokeh_warnings() and all(r.exc_info is None for r in bokeh_warnings())


async def test_token_and_session_id_is_403(slider_server, client, bk):
    response = await client.get(f"/app?bokeh-token={bk.make_token('t1')}&bokeh-session-id=t1")
    assert response.status_code == 403
    assert b"Both token and session ID" in response.content
    assert slider_server.get_sessions("/app") == []


async def test_token_argument_names_the_session(slider_server, client, bk):
    token = bk.make_token("by-token")
    response = await client.get(f"/app?bokeh-token={token}")
    assert response.status_code == 200
    assert [s.id for s in slider_server.get_sessions("/app")] == ["by-token"]
    assert token_of(response) == token


async def test_without_generated_ids_a_session_id_is_required(web_app, client, bk):
    server = web_app({"/app": bk.slider_doc}, generate_session_ids=False)
    refused = await client.get("/app")
    assert refused.status_code == 403
    assert b"No bokeh-session-id provided" in refused.content
    assert server.get_sessions() == []
    allowed = await client.get("/app?bokeh-session-id=given")
    assert allowed.status_code == 200
    assert [s.id for s in server.get_sessions("/app")] == ["given"]


async def test_signed_sessions_refuse_an_unsigned_id(web_app, client, bk):
    server = web_app({"/app": bk.slider_doc}, secret_key=SECRET, sign_sessions=True)
    refused = await client.get("/app?bokeh-session-id=unsigned")
    assert refused.status_code == 403
    assert server.get_sessions() == []
    generated = await client.get("/app")
    assert generated.status_code == 200
    assert check_token_signature(token_of(generated), secret_key=SECRET.encode(), signed=True)


async def test_unknown_app_is_404(slider_server, client):
    assert (await client.get("/nope")).status_code == 404
    assert (await client.get("/nope/metadata")).status_code == 404
    assert (await client.get("/nope/autoload.js?bokeh-autoload-element=e")).status_code == 404


async def test_index_lists_every_app(slider_server, client):
    response = await client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/app"' in html and 'href="/other"' in html
    assert slider_server.get_sessions() == []


async def test_index_redirects_to_the_only_app(web_app, client, bk):
    web_app({"/app": bk.slider_doc})
    response = await client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/app"


async def test_index_can_be_disabled(web_app, client, bk):
    web_app({"/app": bk.slider_doc, "/other": bk.div_doc}, use_index=False)
    assert (await client.get("/")).status_code == 404


async def test_index_without_redirect_lists_the_only_app(web_app, client, bk):
    web_app({"/app": bk.slider_doc}, redirect_root=False)
    response = await client.get("/")
    assert response.status_code == 200
    assert 'href="/app"' in response.content.decode()


async def test_app_at_root_is_served_at_root(web_app, client, bk):
    server = web_app({"/": bk.slider_doc})
    response = await client.get("/")
    assert response.status_code == 200
    assert "embed_items" in response.content.decode()
    assert len(server.get_sessions("/")) == 1


async def test_prefix_applies_to_every_endpoint(web_app, client, bk, settings):
    settings.STATICFILES_FINDERS = DJANGO_FINDERS
    server = web_app({"/app": bk.slider_doc}, prefix="/pre")
    page = await client.get("/pre/app")
    assert page.status_code == 200
    assert 'src="/pre/static/js/bokeh.min.js?v=' in page.content.decode()
    assert len(server.get_sessions("/app")) == 1
    assert (await client.get("/app")).status_code == 404
    assert (await client.get("/pre/static/js/bokeh.min.js")).status_code == 200
    assert (await client.get("/static/js/bokeh.min.js")).status_code == 404
    metadata = await client.get("/pre/app/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["url"] == "/app"
    index = await client.get("/pre/")
    assert index.status_code == 302
    assert index["Location"] == "/pre/app"
    assert (await client.get("/")).status_code == 404


ALLOWED = "http://localhost:5006"  # the web_app fixture's websocket allowlist


def assert_cors(response, origin: str) -> None:
    assert response["Access-Control-Allow-Origin"] == origin
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response["Vary"]


def assert_no_cors(response) -> None:
    assert not [h for h in response.headers if h.lower().startswith("access-control-")], dict(response.headers)


async def test_autoload_without_element_is_400(slider_server, client):
    response = await client.get("/app/autoload.js", headers={"Origin": ALLOWED})
    assert response.status_code == 400
    assert b"bokeh-autoload-element" in response.content
    assert_cors(response, ALLOWED)
    assert slider_server.get_sessions() == []


async def test_autoload_embeds_a_new_session_into_the_element(slider_server, client):
    response = await client.get("/app/autoload.js?bokeh-autoload-element=target-17&bokeh-app-path=/app")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert_no_cors(response)  # a same-origin request or a script tag needs none
    js = response.content.decode()
    assert "target-17" in js
    token = token_of(response)
    assert [s.id for s in slider_server.get_sessions("/app")] == [get_session_id(token)]
    assert "/static/bokehserver/js/bokeh.min.js" in js


async def test_autoload_for_another_site_names_bokehjs_with_this_servers_address(slider_server, client, settings):
    settings.STATICFILES_FINDERS = DJANGO_FINDERS
    response = await client.get(
        "/app/autoload.js?bokeh-autoload-element=e&bokeh-absolute-url=http://bokeh.example:8000/app"
    )
    assert '"http://bokeh.example:8000/static/js/bokeh.min.js?v=' in response.content.decode()


async def test_autoload_lets_an_allowed_origin_read_it_with_credentials(slider_server, client):
    client.cookies["c"] = "1"
    response = await client.get("/app/autoload.js?bokeh-autoload-element=e1", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert_cors(response, ALLOWED)


async def test_autoload_gives_a_foreign_origin_no_cors_headers(slider_server, client):
    client.cookies["c"] = "1"
    response = await client.get(
        "/app/autoload.js?bokeh-autoload-element=e1", headers={"Origin": "http://embedder.example"}
    )
    assert response.status_code == 200  # a foreign page may still load it as a <script>
    assert_no_cors(response)


async def test_autoload_options_answers_allowed_origins_only(slider_server, client):
    response = await client.options("/app/autoload.js", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    assert_cors(response, ALLOWED)
    foreign = await client.options("/app/autoload.js", headers={"Origin": "http://embedder.example"})
    assert_no_cors(foreign)
    assert slider_server.get_sessions() == []


@pytest.mark.parametrize("element", ["x'); alert(1); ('", "a</script><script>alert(1)</script>", "a b", "é"])
async def test_autoload_refuses_an_element_id_that_is_not_a_plain_id(slider_server, client, element):
    response = await client.get("/app/autoload.js", {"bokeh-autoload-element": element})
    assert response.status_code == 400
    assert b"alert" not in response.content
    assert slider_server.get_sessions() == []


@pytest.mark.parametrize("url", ["http://[::1", "http://host:99999999/", "javascript:alert(1)", "//"])
async def test_autoload_refuses_a_malformed_absolute_url(slider_server, client, url):
    response = await client.get("/app/autoload.js", {"bokeh-autoload-element": "e1", "bokeh-absolute-url": url})
    assert response.status_code == 400
    assert slider_server.get_sessions() == []


@pytest.mark.parametrize("method", ["trace", "options", "post", "put", "delete"])
@pytest.mark.parametrize("path", ["/app", "/"])
async def test_pages_answer_only_get_and_head(slider_server, client, method, path):
    response = await getattr(client, method)(path)
    assert response.status_code == 405
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}
    assert slider_server.get_sessions() == []


async def test_autoload_with_session_id_header_uses_that_session(slider_server, client):
    response = await client.get("/app/autoload.js?bokeh-autoload-element=e1", headers={"Bokeh-Session-Id": "embedded"})
    assert response.status_code == 200
    assert [s.id for s in slider_server.get_sessions("/app")] == ["embedded"]


async def test_metadata_returns_url_and_data(web_app, client, bk):
    web_app({"/app": Application(FunctionHandler(bk.slider_doc), metadata={"k": 1}), "/plain": bk.div_doc})
    response = await client.get("/app/metadata")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"url": "/app", "data": {"k": 1}}
    plain = await client.get("/plain/metadata")
    assert json.loads(plain.content) == {"url": "/plain", "data": {}}


async def test_bokehjs_is_served_with_an_etag(slider_server, client):
    response = await client.get("/static/js/bokeh.min.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    content = (Path(bokeh_settings.bokehjs_path()) / "js" / "bokeh.min.js").read_bytes()
    assert response.content == content
    assert response["ETag"] == f'"{hashlib.sha512(content).hexdigest()}"'
    assert "max-age=315360000" not in response.get("Cache-Control", "")


async def test_versioned_bokehjs_is_cached_for_years(slider_server, client):
    response = await client.get("/static/js/bokeh.min.js?v=abc")
    assert response.status_code == 200
    assert "max-age=315360000" in response["Cache-Control"]


async def test_matching_etag_is_304(slider_server, client):
    etag = (await client.get("/static/js/bokeh.min.js"))["ETag"]
    response = await client.get("/static/js/bokeh.min.js", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    stale = await client.get("/static/js/bokeh.min.js", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../settings.py",
        "/static/%2e%2e/%2e%2e/bokeh/__init__.py",
        "/static/js/../../../__init__.py",
        "/static/..%2f..%2f__init__.py",
        "/static//etc/passwd",
        "/dirapp/static/../main.py",
        "/dirapp/static/%2e%2e/main.py",
        "/static/js/no-such-file.js",
        "/static/js",
    ],
)
async def test_static_outside_its_root_or_missing_is_404(web_app, client, bk, path):
    web_app({"/dirapp": bk.DIRAPP, "/app": bk.slider_doc})
    response = await client.get(path)
    assert response.status_code == 404


async def test_directory_app_serves_its_own_static_files(web_app, client, bk):
    web_app({"/dirapp": bk.DIRAPP, "/app": bk.slider_doc})
    response = await client.get("/dirapp/static/style.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert response.content == (bk.DIRAPP / "static" / "style.css").read_bytes()


async def test_directory_app_page_uses_its_template(web_app, client, bk):
    server = web_app({"/dirapp": bk.DIRAPP})
    response = await client.get("/dirapp?x=1")
    assert response.status_code == 200
    [session] = server.get_sessions("/dirapp")
    assert session.document.get_model_by_name("args").text == 'args: {"x": ["1"]}'
    html = response.content.decode()
    assert '<h1 id="dirapp-heading">' in html
    assert 'href="dirapp/static/style.css"' in html


def half_built_doc(doc) -> None:
    doc.add_root(Div(name="built", text="built before the failure"))
    raise RuntimeError("modify_doc exploded on purpose")


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
async def test_app_whose_modify_doc_raises_gets_its_page_with_what_was_built(web_app, client, bk, settings, caplog, debug):
    settings.DEBUG = debug
    server = web_app({"/broken": half_built_doc, "/app": bk.slider_doc})
    broken = await client.get("/broken")
    assert broken.status_code == 200
    body = broken.content.decode()
    assert "exploded on purpose" not in body and "Traceback" not in body  # the log has it, never the client
    [session] = server.get_sessions("/broken")
    assert [root.name for root in session.document.roots] == ["built"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None, [r.getMessage() for r in errors]
    ok = await client.get("/app")
    assert ok.status_code == 200
    assert len(server.get_sessions("/app")) == 1


async def test_autoload_of_an_app_whose_modify_doc_raises_embeds_what_was_built(web_app, client, bk):
    server = web_app({"/broken": half_built_doc})
    response = await client.get("/broken/autoload.js", {"bokeh-autoload-element": "el"})
    assert response.status_code == 200
    assert "exploded on purpose" not in response.content.decode()
    [session] = server.get_sessions("/broken")
    assert [root.name for root in session.document.roots] == ["built"]


@pytest.mark.parametrize(("route", "source", "roots"), [
    ("/boom", "from bokeh.io import curdoc\nfrom bokeh.models import Div\ncurdoc().add_root(Div())\n"
              "raise RuntimeError('boom at import')\n", 1),
    ("/syntax", "def oops(:\n", 0),
])
async def test_script_app_that_fails_to_run_or_compile_gets_its_page_and_one_error_line(
    web_app, client, bk, tmp_path, caplog, route, source, roots
):
    script = tmp_path / f"{route.strip('/')}.py"
    script.write_text(source)
    server = web_app({route: script, "/app": bk.slider_doc})
    response = await client.get(route)
    assert response.status_code == 200
    assert "boom at import" not in response.content.decode() and "oops" not in response.content.decode()
    [session] = server.get_sessions(route)
    assert len(session.document.roots) == roots
    # once per session (a script that cannot even compile is also reported once when it is loaded)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "bokehserver.building"]
    assert len(errors) == 1 and str(script) in errors[0].getMessage(), [r.getMessage() for r in errors]
    assert (await client.get("/app")).status_code == 200


async def test_favicon_is_bokehs_icon(slider_server, client):
    response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert response.content and response.content == DEFAULT_ICO.read_bytes()


async def test_favicon_from_ico_path(web_app, client, bk, tmp_path):
    icon = tmp_path / "mine.ico"
    icon.write_bytes(b"\x00\x00\x01\x00custom")
    web_app({"/app": bk.slider_doc}, ico_path=str(icon))
    response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.content == icon.read_bytes()


async def test_favicon_can_be_disabled(web_app, client, bk):
    web_app({"/app": bk.slider_doc}, ico_path="none")
    assert (await client.get("/favicon.ico")).status_code == 404


async def test_extra_patterns_are_served_under_the_prefix(web_app, async_client):
    from django.http import HttpResponse
    from django.urls import path

    def hello(request, name):
        return HttpResponse(f"hello {name}")

    async def ahello(request):
        return HttpResponse("async hello")

    web_app({"/app": lambda doc: None}, prefix="/pre",
            extra_patterns=[path("hello/<str:name>", hello), path("ahello", ahello)])
    assert (await async_client.get("/pre/hello/bokeh")).content == b"hello bokeh"
    assert (await async_client.get("/pre/ahello")).content == b"async hello"
    assert (await async_client.get("/hello/bokeh")).status_code == 404


async def test_session_request_keeps_the_user_but_not_the_whole_django_request(web_app, async_client):
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    seen = {}

    def modify_doc(doc):
        request = doc.session_context.request
        seen["user"] = request.user.username
        seen["path"] = request.path
        seen["has_meta"] = hasattr(request, "META")

    app = web_app({"/app": modify_doc})
    user = await sync_to_async(get_user_model().objects.create_user)("reader", password="pw")
    await async_client.aforce_login(user)
    assert (await async_client.get("/app")).status_code == 200
    assert seen == {"user": "reader", "path": "/app", "has_meta": False}
    assert app.get_sessions("/app")


test_session_request_keeps_the_user_but_not_the_whole_django_request = pytest.mark.django_db(transaction=True)(
    test_session_request_keeps_the_user_but_not_the_whole_django_request
)


async def test_an_apps_websocket_url_over_plain_http_is_400(slider_server, client):
    response = await client.get("/app/ws")
    assert response.status_code == 400
    assert b"websocket" in response.content
    assert (await client.get("/nope/ws")).status_code == 404


async def test_a_page_past_the_per_app_session_limit_is_503_with_the_reason(slider_server, client, settings):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_APP": 1}
    assert (await client.get("/app")).status_code == 200
    refused = await client.get("/app")
    assert refused.status_code == 503
    assert b"MAX_SESSIONS_PER_APP" in refused.content
    autoload = await client.get("/app/autoload.js?bokeh-autoload-element=e1")
    assert autoload.status_code == 503
    assert len(slider_server.get_sessions("/app")) == 1
