"""The per-process background worker: owns every scheduled callback and server job as a task."""
from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .ticks import Phases, TickSchedule

logger = logging.getLogger(__name__)

__all__ = ("Worker", "every")


class Worker:
    """Holds hard references to background tasks so none is garbage-collected mid-flight.

    ``start()`` and ``stop()`` are symmetric; ``stop()`` cancels what is left and waits a
    bounded time for it to finish.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: list[tuple[str, float, Callable[[], Awaitable[None] | None]]] = []
        self.phases = Phases()  # the phases sessions' periodic callbacks tick at (``ticks``)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def task_count(self) -> int:
        return len(self._tasks)

    def add_job(self, name: str, period_ms: float, func: Callable[[], Awaitable[None] | None]) -> None:
        """Register a server job that runs every ``period_ms`` once the worker starts."""
        self._jobs.append((name, period_ms, func))
        if self._loop is not None:
            self.spawn(every(period_ms, func, name=name), name=name)

    def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        for name, period_ms, func in self._jobs:
            self.spawn(every(period_ms, func, name=name), name=name)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as a task this worker owns until it finishes.

        The task starts from an empty context: nothing of the request that happened to start
        it (its thread-sensitive context, a bound curdoc) leaks into long-lived work.
        """
        task = contextvars.Context().run(asyncio.get_running_loop().create_task, coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """Forget a task; one that died of an exception says so now, not at interpreter exit."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Background task %s died", task.get_name(), exc_info=task.exception())

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait up to ``timeout`` seconds for them to end."""
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                logger.warning("%d background tasks did not stop within %.1f s", len(pending), timeout)
        self._loop = None


async def every(period_ms: float, func: Callable[[], Awaitable[None] | None], *, name: str = "job") -> None:
    """Call ``func`` every ``period_ms`` on an anchored schedule; ticks it overran are skipped (``ticks``)."""
    loop = asyncio.get_running_loop()
    schedule = TickSchedule(period_ms / 1000.0, loop.time())
    while True:
        await asyncio.sleep(max(0.0, schedule.due - loop.time()))
        started = loop.time()
        try:
            result = func()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Error in server job %s", name)
        schedule.advance(started, loop.time())
