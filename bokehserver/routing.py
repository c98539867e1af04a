"""Websocket routes: ``<prefix>/<app>/ws`` for every app, resolved against the installed apps."""
from __future__ import annotations

from typing import Any

from django.urls import re_path

__all__ = ("websocket_application", "websocket_urlpatterns")


def websocket_urlpatterns() -> list[Any]:
    from .consumers import SessionConsumer

    return [re_path(r"^(?P<app_path>.*)/ws$", SessionConsumer.as_asgi())]


def websocket_application() -> Any:
    from channels.routing import URLRouter

    return URLRouter(websocket_urlpatterns())
