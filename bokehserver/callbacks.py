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

from bokeh.server.callbacks import NextTickCallback as _BokehNextTick
from bokeh.server.callbacks import PeriodicCallback as _BokehPeriodic
from bokeh.server.callbacks import SessionCallback as _BokehSessionCallback
from bokeh.server.callbacks import TimeoutCallback as _BokehTimeout
from bokeh.util.serialization import make_id

from .app_code import Lane
from .ticks import TickSchedule
from .worker import Worker

logger = logging.getLogger(__name__)

__all__ = (
    "CallbackGroup",
    "NextTickCallback",
    "PeriodicCallback",
    "ServerCallbacks",
    "SessionCallback",
    "TimeoutCallback",
)


class SessionCallback(_BokehSessionCallback):
    """A callback bound to one document: ``add()`` schedules it in that document's session.

    These are bokeh's own callback classes underneath, so a document, its session and
    ``doc.remove_*_callback`` treat them exactly like the objects ``doc.add_*_callback`` returns.
    """

    one_shot = False

    def __init__(self, document: Any, callback: Callable[[], Any], id: str | None = None) -> None:
        _BokehSessionCallback.__init__(self, callback, callback_id=id or make_id())
        self._document = document
        self._target = callback

    @property
    def document(self) -> Any:
        return self._document

    def add(self) -> SessionCallback:
        """Schedule this callback; returns itself."""
        self._document.callbacks.add_session_callback(self, self._target, self.one_shot)
        return self

    def remove(self) -> None:
        """Stop this callback (ValueError if it already ran or was removed)."""
        self._document.callbacks.remove_session_callback(self)


class NextTickCallback(SessionCallback, _BokehNextTick):
    """Runs once, as soon as the session's document lock is free."""

    one_shot = True


class PeriodicCallback(SessionCallback, _BokehPeriodic):
    """Runs every ``period`` milliseconds until removed; under overload it skips ticks (``ticks``)."""

    def __init__(self, document: Any, callback: Callable[[], Any], period: int, id: str | None = None) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0 milliseconds, got {period!r}")
        SessionCallback.__init__(self, document, callback, id)
        self._period = period


class TimeoutCallback(SessionCallback, _BokehTimeout):
    """Runs once, ``timeout`` milliseconds after it is added."""

    one_shot = True

    def __init__(self, document: Any, callback: Callable[[], Any], timeout: int, id: str | None = None) -> None:
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 milliseconds, got {timeout!r}")
        SessionCallback.__init__(self, document, callback, id)
        self._timeout = timeout


Invoker = Callable[[_BokehSessionCallback], Awaitable[Any]]


class CallbackGroup:
    """The live callbacks of one session; safe to add to and remove from any thread.

    ``backlog`` says how many bytes the session has written that a socket refused (the client reads
    too slowly to keep its buffer from filling); a periodic tick that finds some skips its turn, so
    a slow reader slows the stream down instead of having ticks pile up in a send buffer and arrive
    as a burst later (bokeh serve waits for each write to flush, with a like effect).
    """

    def __init__(self, worker: Worker, loop: asyncio.AbstractEventLoop, invoke: Invoker, label: str,
                 backlog: Callable[[], int] | None = None) -> None:
        self._worker = worker
        self._backlog = backlog
        self._loop = loop
        self._invoke = invoke
        self._label = label
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._running: set[str] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, callback: _BokehSessionCallback) -> None:
        if self._on_other_thread():
            self._loop.call_soon_threadsafe(self.add, callback)
            return
        if self._closed:
            return
        if callback.id in self._tasks:
            raise ValueError(f"callback {callback.id} is already scheduled")
        self._tasks[callback.id] = self._worker.spawn(self._run(callback), name=f"bokeh-callback-{callback.id}")

    def remove(self, callback: _BokehSessionCallback) -> None:
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

    def _alive(self, callback: _BokehSessionCallback) -> bool:
        return not self._closed and callback.id in self._tasks

    async def _call(self, callback: _BokehSessionCallback) -> None:
        self._running.add(callback.id)
        try:
            await self._invoke(callback)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Error in %s callback %s (%s)", type(callback).__name__, callback.id, self._label)
        finally:
            self._running.discard(callback.id)

    async def _run(self, callback: _BokehSessionCallback) -> None:
        if isinstance(callback, _BokehPeriodic):
            await self._run_periodic(callback)
            return
        if isinstance(callback, _BokehTimeout):
            await asyncio.sleep(callback.timeout / 1000.0)
        elif not isinstance(callback, _BokehNextTick):
            raise TypeError(f"unknown callback type {type(callback).__name__}")
        if not self._alive(callback):
            return
        self._tasks.pop(callback.id, None)
        await self._call(callback)

    async def _run_periodic(self, callback: _BokehPeriodic) -> None:
        """Run ``callback`` on its ``TickSchedule``: anchored, late ticks once, missed ticks skipped."""
        loop, phases, period = self._loop, self._worker.phases, callback.period / 1000.0
        now = loop.time()
        first, slot = phases.place(period, now)
        schedule = TickSchedule(period, now, first)
        try:
            while True:
                await asyncio.sleep(max(0.0, schedule.due - loop.time()))
                if not self._alive(callback):
                    return
                started = loop.time()
                if self._backlog is not None and self._backlog() > 0:
                    schedule.skip(started)
                    continue
                await self._call(callback)
                skipped = schedule.skipped
                schedule.advance(started, loop.time())
                if schedule.skipped > skipped:
                    logger.debug("Periodic callback %s (%s) skipped %d late tick(s)",
                                 callback.id, self._label, schedule.skipped - skipped)
        finally:
            phases.release(period, slot)


class ServerCallbacks:
    """Callbacks of a whole app rather than one session, for ``server_lifecycle.py``.

    Created lazily on the running loop; they live until the server stops.
    """

    def __init__(self, worker_getter: Callable[[], Worker], label: str, lane: Lane | None = None) -> None:
        self._worker_getter = worker_getter
        self._label = label
        self._lane = lane or Lane()
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
            self._group = CallbackGroup(self._worker_getter(), loop, self._run, self._label)
        return self._group

    async def _run(self, callback: _BokehSessionCallback) -> None:
        await self._lane.run(callback.callback)

    def reset(self) -> None:
        """Forget every callback (the worker that ran them has stopped)."""
        if self._group is not None:
            self._group.remove_all()
        self._group = None

    def add_next_tick_callback(self, callback: Callable[[], Any]) -> _BokehNextTick:
        obj = _BokehNextTick(callback, callback_id=make_id())
        self._callbacks().add(obj)
        return obj

    def add_timeout_callback(self, callback: Callable[[], Any], timeout_milliseconds: int) -> _BokehTimeout:
        obj = _BokehTimeout(callback, timeout_milliseconds, callback_id=make_id())
        self._callbacks().add(obj)
        return obj

    def add_periodic_callback(self, callback: Callable[[], Any], period_milliseconds: int) -> _BokehPeriodic:
        obj = _BokehPeriodic(callback, period_milliseconds, callback_id=make_id())
        self._callbacks().add(obj)
        return obj

    def remove_callback(self, callback: _BokehSessionCallback) -> None:
        if self._group is not None:
            self._group.remove(callback)
