"""Running app code the way Django runs sync code for async callers: off the event loop.

Synchronous app code (``modify_doc``, ``on_change`` handlers, callbacks, hooks) runs on a
thread of a shared pool, so the ORM, Django's cache and blocking libraries work, and a slow
callback holds up its own session only: the session's document lock keeps each session's code
one piece at a time, while other sessions' code runs on other threads. Database connections are
recycled around each piece of work, as around a request. Coroutine functions run on the loop.

A pool rather than a thread per session: a thread per session costs ~70 KiB per session and
asgiref's per-call machinery; the pool hop is a queue put, and results come back in batches.

With ``APP_CODE_THREADS`` = 0, synchronous app code runs on the event loop itself, as under
bokeh serve: no hop (less CPU per callback and steadier periodic callbacks under load), but
blocking code stalls every session and Django refuses ORM calls there (SynchronousOnlyOperation).
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from . import conf

logger = logging.getLogger(__name__)

__all__ = ("is_async_callable", "run_app_code", "thread_count", "use_threads")

_pool: _Pool | None = None
_pool_lock = threading.Lock()
_threads: int | None = None  # set by the web application (runbokeh --app-code-threads); None: settings


def use_threads(count: int) -> None:
    """Run sync app code on ``count`` pool threads from now on (0: on the event loop)."""
    global _threads, _pool
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"app_code_threads must be an int >= 0, got {count!r}")
    with _pool_lock:
        _threads = count
        old, _pool = _pool, None
    if old is not None:
        old.shutdown()


def thread_count() -> int:
    """How many threads run sync app code now (0: the event loop)."""
    return conf.get("APP_CODE_THREADS") if _threads is None else _threads


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether ``func`` (looking through ``functools.wraps`` layers) is a coroutine function."""
    target = inspect.unwrap(func)
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))


class _Pool:
    """Threads running sync app code, whose results reach the loop in batches.

    ``run_in_executor`` chains a concurrent future to an asyncio one and wakes the loop through
    its self-pipe once per call; for many short callbacks (a 20 Hz stream in 50 sessions) that
    is a fifth of the server's CPU. Here a finished call joins its loop's batch, and the loop is
    woken only when no batch is already waiting for it.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a job
        self._queued = 0  # jobs no thread has taken yet
        self._done: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = {}

    def run(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            self._queued += 1
            if self._queued > self._idle and len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name=f"bokeh-app_{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put((loop, future, call))
        return future

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                self._queued -= job is not None
            if job is None:
                return
            loop, future, call = job
            try:
                outcome: tuple[Any, BaseException | None] = (call(), None)
            except BaseException as exc:  # handed to the awaiting task, as concurrent.futures does
                outcome = (None, exc)
            self._finish(loop, future, *outcome)
            del job, future, call, outcome

    def _finish(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        with self._lock:
            batch = self._done.get(loop)
            if batch is not None:
                batch.append((future, result, exc))
                return
            self._done[loop] = [(future, result, exc)]
        try:
            loop.call_soon_threadsafe(self._deliver, loop)
        except RuntimeError:  # the loop closed meanwhile: nobody awaits the result
            with self._lock:
                self._done.pop(loop, None)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            batch = self._done.pop(loop, [])
        for future, result, exc in batch:
            if future.cancelled():
                continue
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)


def _executor() -> _Pool:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = _Pool(thread_count())
    return _pool


def _recycle_connections() -> None:
    """Close this thread's database connections that are broken or past CONN_MAX_AGE."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        try:
            connection.close_if_unusable_or_obsolete()
        except Exception as exc:  # the database being down must not break app code that does not use it
            logger.warning("Could not recycle database connection %r: %r", connection.alias, exc)


def _run_in_pool_thread(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    _recycle_connections()
    try:
        return func(*args, **kwargs)
    finally:
        _recycle_connections()


async def run_app_code(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run app code: sync on a pool thread (with this task's context), async on the loop."""
    if is_async_callable(func) or thread_count() == 0:
        result = func(*args, **kwargs)
    else:
        context = contextvars.copy_context()
        call = functools.partial(context.run, _run_in_pool_thread, func, args, kwargs)
        result = await _executor().run(call)
    while inspect.isawaitable(result):
        result = await result
    return result
