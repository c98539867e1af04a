"""The ASGI handler that runs a site's sync middleware chain in one thread hop per request."""
from __future__ import annotations

import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application as django_asgi_application
from django.http import HttpResponse
from django.urls import path
from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin

from bokehserver.django_asgi import ASGIHandler, chain_is_async, get_asgi_application

# What each request saw: (step, thread id); the loop's thread id is taken by the test.
seen: list[tuple[str, int]] = []
RECORDER = f"{__name__}.Recorder"
ASYNC_RECORDER = f"{__name__}.async_recorder"


class Recorder(MiddlewareMixin):
    def process_request(self, request):
        seen.append(("request", threading.get_ident()))

    def process_response(self, request, response):
        seen.append(("response", threading.get_ident()))
        response["X-Recorded"] = "yes"
        return response


@sync_and_async_middleware
def async_recorder(get_response):
    async def middleware(request):
        seen.append(("async middleware", threading.get_ident()))
        return await get_response(request)

    return middleware


async def async_view(request):
    seen.append(("async view", threading.get_ident()))
    return HttpResponse(f"hello {getattr(request, 'user', None)}")


def sync_view(request):
    seen.append(("sync view", threading.get_ident()))
    return HttpResponse("sync", status=418)


urlpatterns = [path("async", async_view), path("sync", sync_view)]


async def _get(application, url):
    scope = {"type": "http", "method": "GET", "path": url, "raw_path": url.encode(), "query_string": b"",
             "headers": [(b"host", b"testserver")], "root_path": "", "scheme": "http",
             "server": ("testserver", 80)}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return start["status"], dict(start["headers"]), body


@pytest.fixture
def site(settings):
    settings.ROOT_URLCONF = __name__
    seen.clear()
    return settings


@pytest.mark.parametrize("url, view", [("/async", "async view"), ("/sync", "sync view")])
async def test_mixin_middleware_run_together_on_one_thread_and_an_async_view_on_the_loop(site, url, view):
    site.MIDDLEWARE = [*site.MIDDLEWARE, RECORDER]
    handler = get_asgi_application()
    assert isinstance(handler, ASGIHandler) and handler.sync_chain
    status, headers, body = await _get(handler, url)
    loop_thread = threading.get_ident()

    assert status == (200 if view == "async view" else 418)
    assert headers[b"X-Recorded"] == b"yes"
    assert headers[b"X-Frame-Options"] == b"DENY"  # Django's own middleware ran too
    if view == "async view":
        assert body == b"hello AnonymousUser"  # AuthenticationMiddleware set request.user
    steps = dict(seen)
    assert list(steps) == ["request", view, "response"]
    assert steps["request"] == steps["response"] != loop_thread
    assert steps[view] == (loop_thread if view == "async view" else steps["request"])


async def test_the_responses_are_djangos_own(site):
    site.MIDDLEWARE = [*site.MIDDLEWARE, RECORDER]
    ours = await _get(get_asgi_application(), "/async")
    djangos = await _get(django_asgi_application(), "/async")
    assert ours == djangos
    assert (await _get(get_asgi_application(), "/nowhere"))[0] == 404


async def test_a_natively_async_chain_stays_on_the_loop(site):
    site.MIDDLEWARE = [ASYNC_RECORDER]
    assert chain_is_async()
    handler = get_asgi_application()
    assert not handler.sync_chain
    status, _, _ = await _get(handler, "/async")
    loop_thread = threading.get_ident()
    assert status == 200
    assert seen == [("async middleware", loop_thread), ("async view", loop_thread)]


def test_one_mixin_middleware_makes_the_chain_sync(site):
    site.MIDDLEWARE = [ASYNC_RECORDER, RECORDER]
    assert not chain_is_async()
    site.MIDDLEWARE = []
    assert chain_is_async()


@pytest.fixture
def hops(monkeypatch):
    """The functions each request hands to a thread (asgiref's ``SyncToAsync`` calls), in order."""
    from asgiref.sync import SyncToAsync

    handed = []
    original = SyncToAsync.__call__

    def counted(self, *args, **kwargs):
        handed.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return handed


ONE_HOP = ["Signal.asend.<locals>.sync_send", "BaseHandler.get_response", "HttpResponseBase.close"]


async def test_a_page_through_djangos_default_middleware_costs_one_hop_not_two_per_middleware(site, hops):
    assert len(site.MIDDLEWARE) == 7  # the demo site's: Django's startproject list
    ours, djangos = get_asgi_application(), django_asgi_application()
    hops.clear()
    await _get(ours, "/async")
    ours_hops, hops[:] = list(hops), []
    await _get(djangos, "/async")
    # Django's own per-request hops (request_started, the response's close) stay in both
    fixed = [ONE_HOP[0], ONE_HOP[2]]
    assert ours_hops == ONE_HOP
    middleware_hops = [name for name in hops if name not in fixed]
    assert len(middleware_hops) == 13  # six process_request, one process_view, six process_response


async def test_a_site_without_asgi_application_is_served_through_the_one_hop_handler(site, hops):
    from bokehserver.routing import site_asgi_application

    site.ASGI_APPLICATION = None
    application = site_asgi_application()  # what runbokeh and Server serve for such a site
    hops.clear()
    status, _, body = await _get(application, "/async")
    assert (status, body) == (200, b"hello AnonymousUser")
    assert hops == ONE_HOP
