"""Django's ASGI handler, with a site's synchronous middleware run in one thread hop per request.

Under ASGI, Django runs each ``MiddlewareMixin`` middleware (all of Django's own: security,
sessions, CSRF, auth, messages, ...) in async mode, which hands its ``process_request`` and
``process_response`` to the sync thread one call at a time: ~14 hops through a thread and back
per request for the default middleware list, each a thread wake-up and a return to the loop.
That is most of the CPU a small page costs. This handler loads such a chain in sync mode, as
under WSGI, and runs the whole of it in one hop to the same thread Django uses for sync code
(``thread_sensitive``), so database connections, signals and thread-locals behave as before.
An async view in it (bokehserver's own are) still runs on the event loop, reached back through
``async_to_sync``: two hops in all, whatever the number of middleware.

When every middleware is natively async (none of them a ``MiddlewareMixin``), there is nothing
to save and Django's async chain runs as is.
"""
from __future__ import annotations

import logging
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

__all__ = ("ASGIHandler", "chain_is_async", "get_asgi_application")


def _natively_async(dotted: str) -> bool:
    middleware = import_string(dotted)
    if isinstance(middleware, type) and issubclass(middleware, MiddlewareMixin):
        return False
    return bool(getattr(middleware, "async_capable", False))


def chain_is_async() -> bool:
    """Whether the site's middleware all run on the loop without handing work to a thread."""
    return all(_natively_async(dotted) for dotted in settings.MIDDLEWARE)


class ASGIHandler(DjangoASGIHandler):
    """Django's ``ASGIHandler`` whose sync middleware chain costs one thread hop, not two per middleware."""

    sync_chain = False

    def load_middleware(self, is_async: bool = False) -> None:
        """Load the chain in sync mode where Django's async mode would hop per middleware."""
        self.sync_chain = is_async and not chain_is_async()
        super().load_middleware(is_async=is_async and not self.sync_chain)
        if self.sync_chain:
            self._respond = sync_to_async(self.get_response, thread_sensitive=True)
            logger.debug("Running the middleware chain in sync mode, one thread hop per request")

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if self.sync_chain:
            return await self._respond(request)
        return await super().get_response_async(request)


def get_asgi_application() -> Any:
    """``django.core.asgi.get_asgi_application`` with bokehserver's handler (sets Django up first)."""
    django.setup(set_prefix=False)
    return ASGIHandler()
