"""Django views for bokeh serve's HTTP endpoints: app page, autoload.js, metadata, index, static, favicon."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import bokeh
from asgiref.sync import sync_to_async
from bokeh.core.templates import AUTOLOAD_JS
from bokeh.embed.bundle import Bundle, Script
from bokeh.embed.elements import script_for_render_items
from bokeh.embed.util import RenderItem
from bokeh.util.token import (
    check_token_signature,
    generate_jwt_token,
    generate_session_id,
    get_session_id,
    get_token_payload,
)
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import _compat, conf, registry
from .access import USER_KEY, owner_in, owner_of
from .app_code import is_async_callable
from .application_context import ApplicationContext, LimitReached, SessionEnded
from .asgi import BokehASGI
from .extensions import serve_extension_file
from .pages import render_app_page
from .request_data import RequestProxy, token_payload
from .resources import bokehjs_bundle
from .session import ServerSession
from .static import bokehjs_root, serve_file

logger = logging.getLogger(__name__)

__all__ = ("autoload_js", "extension_static", "favicon", "metadata", "page", "static", "websocket_endpoint")

# what bokeh's server_document() generates, and any id a page author would write
ELEMENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
DEFAULT_ICO = Path(bokeh.__file__).parent / "server" / "views" / "bokeh.ico"


class SessionRefused(Exception):
    """The request may not have a session: answered with 403 and this text."""


def _web_application() -> BokehASGI:
    web_app = registry.get_web_application()
    web_app.ensure_started()
    return web_app


def _mount(request: HttpRequest, app_path: str | None, endpoint: str = "") -> str:
    """The URL path (ending in "/") where the site's URLconf put bokehserver's endpoints.

    ``app_path`` is what the endpoint's pattern captured after that point, prefix included.
    """
    tail = "/".join(part for part in (app_path, endpoint) if part)
    path = request.path
    if not tail:
        return path
    if path.endswith("/") and not endpoint:
        path = path[:-1]  # the page of "app/"
    return path[: len(path) - len(tail)] if path.endswith(tail) else "/"


def _context(web_app: BokehASGI, captured: str | None) -> ApplicationContext:
    route = web_app.route_for(captured)
    context = web_app.context_for(route) if route is not None else None
    if context is None:
        raise Http404("no Bokeh application at this path")
    return context


async def _user(request: HttpRequest) -> Any:
    """The request's user, resolved now: app code reading ``session_context.request.user`` makes no query."""
    if not hasattr(request, "auser"):
        return None
    user = await request.auser()
    request.user = user
    return user


async def _refusal(request: HttpRequest, web_app: BokehASGI, app_path: str | None) -> str | None:
    """Why the request's user may not open ``app_path`` (None: it may): "login required" or "permission denied"."""
    rule = web_app.access.rule_for(app_path)
    if not rule.needs_user:
        return None
    user = await _user(request)
    if await rule.allows(user, request):
        return None
    return "permission denied" if user is not None and user.is_authenticated else "login required"


def _refused_page(request: HttpRequest, refusal: str) -> HttpResponse:
    if refusal == "login required":
        return redirect_to_login(request.get_full_path())
    return HttpResponseForbidden("You do not have permission to open this application.")


async def _session_for(request: HttpRequest, web_app: BokehASGI, context: ApplicationContext) -> ServerSession:
    """Find or create the session a page or autoload request asks for, as bokeh serve does."""
    token = request.GET.get("bokeh-token")
    session_id = request.GET.get("bokeh-session-id")
    header_id = request.headers.get("Bokeh-Session-Id")
    if header_id is not None:
        if session_id is not None:
            raise SessionRefused("session ID was provided as an argument and header")
        session_id = header_id
    owner = owner_of(await _user(request))
    if token is not None:
        if session_id is not None:
            raise SessionRefused("Both token and session ID were provided")
        try:
            session_id = get_session_id(token)
            token_owner = owner_in(get_token_payload(token))
        except Exception:
            raise SessionRefused("Invalid token or session ID") from None
        if token_owner != owner:
            raise SessionRefused("session belongs to another user")
    elif session_id is None:
        if not web_app.generate_session_ids:
            raise SessionRefused("No bokeh-session-id provided")
        session_id = generate_session_id(web_app.secret_key, signed=web_app.sign_sessions)
    proxy = RequestProxy.from_django(request)
    if token is None:
        payload = token_payload(
            proxy,
            context.application,
            include_headers=web_app.include_headers,
            exclude_headers=web_app.exclude_headers,
            include_cookies=web_app.include_cookies,
            exclude_cookies=web_app.exclude_cookies,
        )
        if owner is not None:
            payload[USER_KEY] = owner
        payload.update(await web_app.relay.claim())
        token = generate_jwt_token(
            session_id,
            secret_key=web_app.secret_key,
            signed=web_app.sign_sessions,
            expiration=web_app.session_token_expiration,
            extra_payload=payload,
        )
    if not check_token_signature(token, secret_key=web_app.secret_key, signed=web_app.sign_sessions):
        raise SessionRefused("Invalid token or session ID")
    existing = context.find_session(session_id)
    if existing is not None and existing.owner != owner:
        raise SessionRefused("session belongs to another user")
    session = await context.create_session_if_needed(session_id, proxy, token)
    if existing is None:
        web_app.worker.spawn(session.prepare_pull(), name=f"prepare-pull {session_id}")
    return session


def _limit_reached(context: ApplicationContext, exc: LimitReached) -> HttpResponse:
    logger.warning("Refused a session for %s: %s", context.url, exc)
    return _compat.mark_logged(HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8"))


async def page(request: HttpRequest, app_path: str = "", **url_kwargs: Any) -> HttpResponse:
    """The app page (which creates the session), or the index of apps at the prefix root."""
    web_app = _web_application()
    route = web_app.route_for(app_path)
    if route is None:
        raise Http404("outside the Bokeh prefix")
    context = web_app.context_for(route)
    if context is None:
        extra = web_app.resolve_extra(route)
        if extra is not None:
            if is_async_callable(extra.func):
                return await extra.func(request, *extra.args, **extra.kwargs)
            return await sync_to_async(extra.func)(request, *extra.args, **extra.kwargs)
        if route == "/" and web_app.use_index:
            if request.method not in ("GET", "HEAD"):
                return HttpResponseNotAllowed(["GET", "HEAD"])
            refusal = await _refusal(request, web_app, None)
            return _refused_page(request, refusal) if refusal else _index(request, web_app, _mount(request, app_path))
        raise Http404("no Bokeh application at this path")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    refusal = await _refusal(request, web_app, context.url)
    if refusal:
        return _refused_page(request, refusal)
    try:
        session = await _session_for(request, web_app, context)
    except (SessionRefused, SessionEnded) as exc:
        logger.warning("Refused a session for %s: %s", context.url, exc)
        return _compat.mark_logged(HttpResponseForbidden(str(exc)))
    except LimitReached as exc:
        return _limit_reached(context, exc)
    mount = _mount(request, app_path)
    favicon = None if web_app.ico_path == "none" else f"{mount}favicon.ico"
    html = render_app_page(request, session, bokehjs_bundle(web_app, mount), context.url, favicon)
    return _framable(HttpResponse(html, content_type="text/html; charset=utf-8"))


def _framable(response: HttpResponse) -> HttpResponse:
    """Exempt an app page or autoload.js from XFrameOptionsMiddleware unless ``FRAME_APP_PAGES`` is off."""
    if conf.get("FRAME_APP_PAGES"):
        response.xframe_options_exempt = True  # type: ignore[attr-defined]  (what @xframe_options_exempt sets)
    return response


def _index(request: HttpRequest, web_app: BokehASGI, mount: str) -> HttpResponse:
    # the admin's own apps (the dashboard) are reached from the admin, not listed
    routes = sorted(route for route in web_app.app_paths if web_app.access.rule_for(route).kind != "staff")
    base = mount.rstrip("/") + web_app.prefix
    if web_app.redirect_root and len(routes) == 1:
        return HttpResponseRedirect(base + routes[0])
    items = [{"href": base + route, "name": route.lstrip("/")} for route in routes]
    template = web_app.index or "bokehserver/app_index.html"
    return render(request, template, {"prefix": web_app.prefix, "items": items, "routes": routes})


def _cors(response: HttpResponse, request: HttpRequest) -> HttpResponse:
    """Let a page of an allowed origin (the websocket allowlist) read the response; no one else.

    autoload.js carries a session token: a foreign page may load it as a script, never read it.
    """
    origin = request.headers.get("Origin")
    if origin and registry.get_web_application().allows_origin(origin, request.get_host()):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Headers"] = "*"
        response["Access-Control-Allow-Credentials"] = "true"
        response["Vary"] = "Origin"
    return response


@csrf_exempt
@require_http_methods(["GET", "HEAD", "OPTIONS"])
async def autoload_js(request: HttpRequest, app_path: str = "", **url_kwargs: Any) -> HttpResponse:
    """JavaScript that embeds a new session of the app into the requesting element of a foreign page."""
    web_app = _web_application()
    context = _context(web_app, app_path)
    if request.method == "OPTIONS":
        response = _cors(HttpResponse(), request)
        if response.has_header("Access-Control-Allow-Origin"):
            response["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        return response
    element_id = request.GET.get("bokeh-autoload-element")
    if not element_id:
        return _cors(HttpResponseBadRequest("No bokeh-autoload-element query parameter"), request)
    if not ELEMENT_ID.fullmatch(element_id):  # bokeh's template writes it into a JS string unescaped
        return _cors(HttpResponseBadRequest("bokeh-autoload-element is not a plain element id"), request)
    absolute_url = request.GET.get("bokeh-absolute-url")
    server_url = None
    if absolute_url:
        try:
            parsed = urlparse(absolute_url)
            parsed.port  # noqa: B018  (raises on a malformed port)
        except ValueError:
            return _cors(HttpResponseBadRequest("bokeh-absolute-url is not a URL"), request)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            return _cors(HttpResponseBadRequest("bokeh-absolute-url is not an http(s) URL"), request)
        server_url = f"{parsed.scheme}://{parsed.netloc}"
    refusal = await _refusal(request, web_app, context.url)
    if refusal:
        return _cors(_refusal_script(element_id, f"{context.url}: {refusal}"), request)
    try:
        session = await _session_for(request, web_app, context)
    except (SessionRefused, SessionEnded) as exc:
        logger.warning("Refused an autoload session for %s: %s", context.url, exc)
        return _cors(_refusal_script(element_id, f"{context.url}: {exc}"), request)
    except LimitReached as exc:
        return _cors(_limit_reached(context, exc), request)
    app_url = request.GET.get("bokeh-app-path", "/")
    if request.GET.get("resources") != "none":
        bundle = bokehjs_bundle(web_app, _mount(request, app_path, "autoload.js"), server_url)
    else:
        bundle = Bundle()
    render_items = [RenderItem(token=session.token, elementid=element_id, use_for_title=False)]
    bundle.add(Script(script_for_render_items({}, render_items, app_path=app_url, absolute_url=absolute_url)))
    js = AUTOLOAD_JS.render(bundle=bundle, elementid=element_id)
    return _framable(_cors(HttpResponse(js, content_type="application/javascript"), request))


def _refusal_script(element_id: str, message: str) -> HttpResponse:
    """autoload.js for a refused request: it writes the refusal into the element the app would fill,
    so the host page shows it instead of failing on a 403 body it tried to run as a script."""
    text = json.dumps(message)
    element = json.dumps(element_id)
    js = (f"(function() {{ var el = document.getElementById({element}); console.warn({text}); if (!el) return; "
          f"var note = document.createElement('div'); note.className = 'bokehserver-refused'; note.textContent = {text}; "
          f"if (el.tagName === 'SCRIPT') {{ el.insertAdjacentElement('afterend', note); }} else {{ el.replaceChildren(note); }} }})();")
    return HttpResponse(js, content_type="application/javascript", status=200)


async def metadata(request: HttpRequest, app_path: str = "", **url_kwargs: Any) -> HttpResponse:
    """The app's URL and its ``Application(metadata=...)``, as JSON."""
    web_app = _web_application()
    context = _context(web_app, app_path)
    refusal = await _refusal(request, web_app, context.url)
    if refusal:
        return HttpResponseForbidden(refusal)
    data = context.application.metadata
    if callable(data):
        data = data()
    return JsonResponse({"url": context.url, "data": data or {}})


async def static(request: HttpRequest, file_path: str, app_path: str | None = None, **url_kwargs: Any) -> HttpResponse:
    """An app's own ``static/`` file, or a BokehJS file (with ``?v=`` a long-cached one)."""
    web_app = _web_application()
    route = web_app.route_for(app_path)
    if route is None:
        raise Http404("outside the Bokeh prefix")
    context = web_app.context_for(route)
    if context is None and route != "/":
        raise Http404("no Bokeh application at this path")
    app_static = context.application.static_path if context is not None else None
    root = app_static or bokehjs_root()
    return serve_file(request, root, file_path)


async def extension_static(request: HttpRequest, name: str, file_path: str, app_path: str | None = None,
                           **url_kwargs: Any) -> HttpResponse:
    """A file of the Bokeh extension ``name`` (Panel's bundle, its styles...), at bokeh serve's URL."""
    if _web_application().route_for(app_path) is None:
        raise Http404("outside the Bokeh prefix")
    return serve_extension_file(request, name, file_path)


def websocket_endpoint(request: HttpRequest, app_path: str = "", **url_kwargs: Any) -> HttpResponse:
    """``<app>/ws`` asked for over plain HTTP; its pattern routes websockets (see ``routing.py``)."""
    return HttpResponseBadRequest("This is a Bokeh session websocket: connect to it with a websocket")


async def favicon(request: HttpRequest, name: str = "favicon.ico", **url_kwargs: Any) -> HttpResponse:
    web_app = _web_application()
    ico = web_app.ico_path
    if ico == "none":
        raise Http404("favicon disabled")
    path = Path(ico) if ico else DEFAULT_ICO
    return serve_file(request, path.parent, path.name)
