"""The site's ASGI application: websockets of Bokeh apps to the session consumer, HTTP to Django.

A websocket's path is resolved with the site's own URLconf, so ``<app>/ws`` is found wherever
``include("bokehserver.urls")`` (or ``app_urlpatterns()``) put the app: one place says where
the apps live, for pages and websockets alike.
"""
from __future__ import annotations

import logging
from typing import Any

from django.urls import Resolver404, resolve

from .types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

__all__ = ("bokeh_asgi_application", "site_asgi_application", "websocket_application")


def _bokeh_websocket_kwargs(scope: Scope) -> dict[str, Any] | None:
    """The URL kwargs when the site's URLconf resolves the websocket's path to a Bokeh app, else None."""
    from . import views

    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    try:
        match = resolve(path or "/")
    except Resolver404:
        return None
    return dict(match.kwargs) if match.func is views.websocket_endpoint else None


def websocket_application(other_websockets: ASGIApp | None = None) -> ASGIApp:
    """Route a websocket to the session consumer when its path is a Bokeh app's ``ws``.

    Other websockets go to ``other_websockets`` (a site's own Channels routing), or, without it,
    to the consumer too, which closes them with 4004. The consumer looks the Django user up
    itself, from the session cookie, and only for apps whose access rule needs a user or sessions
    that belong to one: a public app's websocket costs no session query. A site that wraps this
    in Channels' ``AuthMiddlewareStack`` has its ``scope["user"]`` used instead.
    """
    from . import registry
    from ._compat.daphne_sockets import adopt_daphne_websocket
    from .consumers import SessionConsumer
    from .handshakes import limit_handshakes

    consumer = SessionConsumer.as_asgi()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        kwargs = _bokeh_websocket_kwargs(scope)
        if kwargs is None and other_websockets is not None:
            await other_websockets(scope, receive, send)
            return
        web_app = registry.get_web_application()
        if kwargs is not None and web_app.relay.hand_off(scope, send):
            return  # a sibling worker process, which built its session, serves it
        send = adopt_daphne_websocket(send, web_app.websocket_max_message_size_bytes)
        scope = {**scope, "url_route": {"args": (), "kwargs": kwargs if kwargs is not None else {"app_path": None}}}
        await consumer(scope, receive, send)

    return limit_handshakes(application)


def bokeh_asgi_application(http_application: ASGIApp, other_websockets: ASGIApp | None = None) -> ASGIApp:
    """Route websockets of Bokeh apps to the session consumer and HTTP to ``http_application``.

    With ``DEBUG`` and ``django.contrib.staticfiles``, static files are served first, as
    ``runserver`` does, so the site and its BokehJS work the same under daphne or uvicorn.
    ``other_websockets`` receives the websockets that are not a Bokeh app's.
    """
    from channels.routing import ProtocolTypeRouter

    from .staticfiles import serve_static_in_debug
    from .stopping import refuse_while_stopping

    router = refuse_while_stopping(ProtocolTypeRouter({
        "http": serve_static_in_debug(http_application),
        "websocket": websocket_application(other_websockets),
    }))
    router.bokehserver = True  # runbokeh checks that a site's ASGI_APPLICATION routes to bokehserver
    return router


def site_asgi_application() -> ASGIApp:
    """What a server of the site serves: its ``ASGI_APPLICATION``, or Django with bokehserver's websockets."""
    from django.utils.module_loading import import_string

    from . import conf
    from .django_asgi import get_asgi_application

    dotted = conf.site("ASGI_APPLICATION")
    if not dotted:
        return bokeh_asgi_application(get_asgi_application())
    application = import_string(dotted)
    if not getattr(application, "bokehserver", False):
        logger.warning(
            "ASGI_APPLICATION %s is not built by bokehserver.asgi.bokeh_asgi_application(); "
            "unless it routes websockets to bokehserver some other way, Bokeh apps cannot connect", dotted,
        )
    return application
