"""Websocket routes: ``<prefix>/<app>/ws`` for every app, resolved against the installed apps."""
from __future__ import annotations

from typing import Any

from django.urls import re_path

__all__ = ("websocket_application", "websocket_urlpatterns")


def websocket_urlpatterns() -> list[Any]:
    from .consumers import SessionConsumer

    return [re_path(r"^(?:(?P<app_path>.*)/)?ws$", SessionConsumer.as_asgi())]


def websocket_application() -> Any:
    """The websocket router, behind the handshake rate limit; it adds the Django user to the scope
    when the served apps need a login.

    Looking the user up costs a session query per connection, so it happens only then.
    """
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter

    from . import registry
    from .handshakes import limit_handshakes

    router = URLRouter(websocket_urlpatterns())
    with_user = AuthMiddlewareStack(router)

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if registry.get_web_application().requires_login():
            await with_user(scope, receive, send)
        else:
            await router(scope, receive, send)

    return limit_handshakes(application)
