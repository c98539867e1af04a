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

from .worker import Worker

logger = logging.getLogger(__name__)

__all__ = ("CallbackGroup",)

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
