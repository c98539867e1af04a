"""Running app code the way Django runs code for async callers: sync code off the event loop.

A session's synchronous app code (``modify_doc``, ``on_change`` handlers, callbacks, hooks)
runs on a thread of that session's own, as Django runs each request's sync code on one
thread, so the ORM, Django's cache and blocking libraries work, and a slow callback holds up
its own session only. Database connections are closed or recycled around each piece of work,
as around a request. Coroutine functions run on the loop.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async

logger = logging.getLogger(__name__)

__all__ = ("AppThread", "is_async_callable", "run_app_code")


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether ``func`` (looking through ``functools.wraps`` layers) is a coroutine function."""
    target = inspect.unwrap(func)
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))


def _recycle_connections() -> None:
    """Close this thread's database connections that are broken or past CONN_MAX_AGE."""
    from django.db import close_old_connections

    try:
        close_old_connections()
    except Exception as exc:  # the database being down must not break app code that does not use it
        logger.warning("Could not recycle database connections: %r", exc)


def _with_fresh_connections(func: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        _recycle_connections()
        try:
            return func(*args, **kwargs)
        finally:
            _recycle_connections()

    return run


class AppThread:
    """The thread one session's synchronous app code runs on, from creation until destroy."""

    def __init__(self) -> None:
        self._key = ThreadSensitiveContext()

    async def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func``: sync on this session's thread, async on the loop; await what it returns."""
        if is_async_callable(func):
            result = func(*args, **kwargs)
        else:
            token = SyncToAsync.thread_sensitive_context.set(self._key)
            try:
                result = await sync_to_async(_with_fresh_connections(func), thread_sensitive=True)(*args, **kwargs)
            finally:
                SyncToAsync.thread_sensitive_context.reset(token)
        while inspect.isawaitable(result):
            result = await result
        return result

    def close(self) -> None:
        """Let the thread go once its current work (if any) ends."""
        self._key._exited = True
        executor = SyncToAsync.context_to_thread_executor.pop(self._key, None)
        if executor is not None:
            executor.shutdown(wait=False)


async def run_app_code(func: Callable[..., Any], *args: Any) -> Any:
    """Run app code that belongs to no session (server hooks, server-wide callbacks)."""
    if is_async_callable(func):
        result = func(*args)
    else:
        # not the thread of whatever request happened to start the server's jobs
        token = SyncToAsync.thread_sensitive_context.set(None)  # type: ignore[arg-type]
        try:
            result = await sync_to_async(_with_fresh_connections(func), thread_sensitive=True)(*args)
        finally:
            SyncToAsync.thread_sensitive_context.reset(token)
    while inspect.isawaitable(result):
        result = await result
    return result
