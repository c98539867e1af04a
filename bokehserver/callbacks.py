"""Scheduling of a session's next-tick, timeout and periodic callbacks on asyncio.

bokeh's ``Document.add_*_callback`` creates the callback objects (``bokeh.server.callbacks``)
and announces them with ``SessionCallbackAdded``; the session hands them to its
``CallbackGroup``, which runs each as a task owned by the process's worker.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bokeh.server.callbacks import NextTickCallback, PeriodicCallback, SessionCallback, TimeoutCallback
from bokeh.util.serialization import make_id

from .app_code import run_app_code
from .worker import Worker

logger = logging.getLogger(__name__)

__all__ = ("CallbackGroup", "ServerCallbacks")

Invoker = Callable[[SessionCallback], Awaitable[Any]]


class CallbackGroup:
    """The live callbacks of one session; safe to add to and remove from any thread."""

    def __init__(self, worker: Worker, loop: asyncio.AbstractEventLoop, invoke: Invoker, label: str) -> None:
        self._worker = worker
        self._loop = loop
        self._invoke = invoke
        self._label = label
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._running: set[str] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, callback: SessionCallback) -> None:
        if self._on_other_thread():
            self._loop.call_soon_threadsafe(self.add, callback)
            return
        if self._closed:
            return
        if callback.id in self._tasks:
            raise ValueError(f"callback {callback.id} is already scheduled")
        self._tasks[callback.id] = self._worker.spawn(self._run(callback), name=f"bokeh-callback-{callback.id}")

    def remove(self, callback: SessionCallback) -> None:
        if self._on_other_thread():
            self._loop.call_soon_threadsafe(self.remove, callback)
            return
        task = self._tasks.pop(callback.id, None)
        if task is not None and callback.id not in self._running:
            task.cancel()

    def remove_all(self) -> None:
        """Stop every callback; one already running finishes, none starts again."""
        self._closed = True
        if self._on_other_thread():
            self._loop.call_soon_threadsafe(self.remove_all)
            return
        for callback_id, task in list(self._tasks.items()):
            if callback_id not in self._running:
                task.cancel()
        self._tasks.clear()

    def _on_other_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is not self._loop
        except RuntimeError:
            return True

    def _alive(self, callback: SessionCallback) -> bool:
        return not self._closed and callback.id in self._tasks

    async def _call(self, callback: SessionCallback) -> None:
        self._running.add(callback.id)
        try:
            await self._invoke(callback)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Error in %s callback %s (%s)", type(callback).__name__, callback.id, self._label)
        finally:
            self._running.discard(callback.id)

    async def _run(self, callback: SessionCallback) -> None:
        if isinstance(callback, PeriodicCallback):
            await self._run_periodic(callback)
            return
        if isinstance(callback, TimeoutCallback):
            await asyncio.sleep(callback.timeout / 1000.0)
        elif not isinstance(callback, NextTickCallback):
            raise TypeError(f"unknown callback type {type(callback).__name__}")
        if not self._alive(callback):
            return
        self._tasks.pop(callback.id, None)
        await self._call(callback)

    async def _run_periodic(self, callback: PeriodicCallback) -> None:
        period = callback.period / 1000.0
        loop = self._loop
        next_at = loop.time() + period
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if not self._alive(callback):
                return
            await self._call(callback)
            next_at += period
            now = loop.time()
            if next_at <= now:
                next_at += (int((now - next_at) // period) + 1) * period


async def _run_plain(callback: SessionCallback) -> None:
    await run_app_code(callback.callback)


class ServerCallbacks:
    """Callbacks of a whole app rather than one session, for ``server_lifecycle.py``.

    Created lazily on the running loop; they live until the server stops.
    """

    def __init__(self, worker_getter: Callable[[], Worker], label: str) -> None:
        self._worker_getter = worker_getter
        self._label = label
        self._group: CallbackGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the server's loop, so hooks running on a thread can schedule callbacks."""
        self._loop = loop

    def _callbacks(self) -> CallbackGroup:
        if self._group is None:
            loop = self._loop
            if loop is None:
                loop = asyncio.get_running_loop()
            self._group = CallbackGroup(self._worker_getter(), loop, _run_plain, self._label)
        return self._group

    def reset(self) -> None:
        """Forget every callback (the worker that ran them has stopped)."""
        if self._group is not None:
            self._group.remove_all()
        self._group = None

    def add_next_tick_callback(self, callback: Callable[[], Any]) -> NextTickCallback:
        obj = NextTickCallback(callback, callback_id=make_id())
        self._callbacks().add(obj)
        return obj

    def add_timeout_callback(self, callback: Callable[[], Any], timeout_milliseconds: int) -> TimeoutCallback:
        obj = TimeoutCallback(callback, timeout_milliseconds, callback_id=make_id())
        self._callbacks().add(obj)
        return obj

    def add_periodic_callback(self, callback: Callable[[], Any], period_milliseconds: int) -> PeriodicCallback:
        obj = PeriodicCallback(callback, period_milliseconds, callback_id=make_id())
        self._callbacks().add(obj)
        return obj

    def remove_callback(self, callback: SessionCallback) -> None:
        if self._group is not None:
            self._group.remove(callback)
