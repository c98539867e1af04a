"""Websocket routes: ``<prefix>/<app>/ws`` for every app, resolved against the installed apps."""
from __future__ import annotations

from typing import Any

from django.urls import re_path

__all__ = ("websocket_application", "websocket_urlpatterns")


def websocket_urlpatterns() -> list[Any]:
    from .consumers import SessionConsumer

    return [re_path(r"^(?:(?P<app_path>.*)/)?ws$", SessionConsumer.as_asgi())]


def websocket_application() -> Any:
    """The websocket router.

    The consumer looks the Django user up itself, from the session cookie, and only for apps
    whose access rule needs a user or sessions that belong to one: a public app's websocket
    costs no session query. A site that wraps this in Channels' ``AuthMiddlewareStack`` has its
    ``scope["user"]`` used instead.
    """
    from channels.routing import URLRouter

    return URLRouter(websocket_urlpatterns())
