"""Running app code the way Django runs sync code for async callers: off the event loop.

Synchronous app code (``modify_doc``, ``on_change`` handlers, callbacks, hooks) runs on a
thread of a shared pool, so the ORM, Django's cache and blocking libraries work, and a slow
callback holds up its own session only. Database connections are recycled around each piece of
work, as around a request. Coroutine functions run on the loop.

Each session runs in a lane: one pool thread assigned to it for its life, so every piece of its
sync code (the script or ``modify_doc`` that builds it, its session hooks, callbacks and
``on_change`` handlers) runs on the same thread, in order, and objects bound to the thread that
made them (a ``sqlite3`` connection, thread-locals) keep working as under bokeh serve. Sessions
run in parallel on different threads; with more sessions than ``APP_CODE_THREADS``, a new
session gets the thread shared by the fewest live sessions, and sessions sharing a thread take
turns on it (a blocking callback then delays the other sessions of its thread, never the rest).
An app's server hooks and server callbacks have a lane of their own.

A pool rather than a thread per session: a thread per session costs ~70 KiB per session and
asgiref's per-call machinery; the pool hop is a queue put, and results come back in batches.

With ``APP_CODE_THREADS`` = 0, synchronous app code runs on the event loop itself, as under
bokeh serve: no hop (less CPU per callback and steadier periodic callbacks under load), but
blocking code stalls every session and Django refuses ORM calls there (SynchronousOnlyOperation).
"""
from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import inspect
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

from django.db.backends.signals import connection_created

from . import conf

logger = logging.getLogger(__name__)

__all__ = ("Lane", "is_async_callable", "run_app_code", "thread_count", "use_threads")

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
    """Threads running sync app code, each with its own queue, whose results reach the loop in batches.

    A lane is pinned to one thread (its slot) for its life, so everything run through it happens
    on that thread, in order. ``assign`` gives a new lane the slot with the fewest live lanes,
    starting that slot's thread the first time; with more lanes than threads, lanes share.

    Ended lanes are counted back lazily: ``release`` appends to ``ended`` (a deque, no lock) and
    the next ``assign`` settles them under the lock. Release runs from a lane's finalizer too,
    which a garbage collection can trigger in any thread at any allocation, including in a thread
    that holds ``_lock``: taking the lock there would deadlock.

    ``run_in_executor`` chains a concurrent future to an asyncio one and wakes the loop through
    its self-pipe once per call; for many short callbacks (a 20 Hz stream in 50 sessions) that
    is a fifth of the server's CPU. Here a finished call joins its loop's batch, and the loop is
    woken only when no batch is already waiting for it.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._queues: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(size)]
        self._threads: list[threading.Thread | None] = [None] * size
        self._lanes = [0] * size  # live lanes per slot, as of the last settling
        self.ended: collections.deque[int] = collections.deque()  # slots of released lanes, not yet settled
        self._lock = threading.Lock()
        self._done: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = {}

    def assign(self) -> int:
        """Pick the slot for a new lane: the least shared one; start its thread if it has none yet."""
        with self._lock:
            self._settle()
            slot = min(range(self._size), key=self._lanes.__getitem__)
            self._lanes[slot] += 1
            if self._threads[slot] is None:
                thread = threading.Thread(target=self._work, args=(slot,), name=f"bokeh-app_{slot}", daemon=True)
                self._threads[slot] = thread
                thread.start()
        return slot

    def lanes(self) -> list[int]:
        """Live lanes per slot (settling released ones first)."""
        with self._lock:
            self._settle()
            return list(self._lanes)

    def _settle(self) -> None:
        while True:
            try:
                slot = self.ended.popleft()
            except IndexError:
                return
            self._lanes[slot] -= 1

    def run(self, slot: int, call: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queues[slot].put((loop, future, call))
        return future

    def shutdown(self) -> None:
        for slot, thread in enumerate(self._threads):
            if thread is not None:
                self._queues[slot].put(None)

    def _work(self, slot: int) -> None:
        jobs = self._queues[slot]
        while True:
            job = jobs.get()
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


# threads that have opened a database connection (Django's connection_created signal says so)
_connected_threads = threading.local()


def _note_connection(sender: Any, **kwargs: Any) -> None:
    _connected_threads.connected = True


connection_created.connect(_note_connection, dispatch_uid="bokehserver.app_code")


def _recycle_connections() -> None:
    """Close this thread's database connections that are broken or past CONN_MAX_AGE.

    A thread that never opened one (most app code never touches the database) skips looking:
    Django's lookup of a thread's connections costs more than many a callback.
    """
    if not getattr(_connected_threads, "connected", False):
        return
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


class Lane:
    """A session's (or an app's server code's) place on the app-code threads: always the same thread.

    The thread is assigned on first use and given back by ``release`` (the session ended) or,
    failing that, when the lane is garbage collected. Releasing never takes a lock.
    """

    __slots__ = ("__weakref__", "_pool", "_release", "_slot")

    def __init__(self) -> None:
        self._pool: _Pool | None = None
        self._slot = -1
        self._release: weakref.finalize[Any, Any] | None = None

    def _bind(self) -> tuple[_Pool, int]:
        pool = _executor()
        if pool is not self._pool:  # first use, or the threads were replaced (use_threads)
            self.release()
            self._slot = pool.assign()
            self._pool = pool
            self._release = weakref.finalize(self, pool.ended.append, self._slot)
        return pool, self._slot

    def release(self) -> None:
        """Give the thread back; idempotent. Lock-free: it may run inside a garbage collection."""
        if self._release is not None:
            self._release()

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run app code: sync on the lane's thread (with this task's context), async on the loop."""
        if is_async_callable(func) or thread_count() == 0:
            result = func(*args, **kwargs)
        else:
            pool, slot = self._bind()
            context = contextvars.copy_context()
            call = functools.partial(context.run, _run_in_pool_thread, func, args, kwargs)
            result = await pool.run(slot, call)
        while inspect.isawaitable(result):
            result = await result
        return result


_shared_lane = Lane()


async def run_app_code(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run app code that belongs to no session or app on one shared lane."""
    return await _shared_lane.run(func, *args, **kwargs)
