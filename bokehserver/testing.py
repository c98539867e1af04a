"""Testing a Bokeh app without a browser: open a session, act as its user, check the document.

::

    from bokehserver.testing import AppSession

    async def test_the_slider_moves_the_curve():          # pytest-asyncio, or any asyncio test
        async with AppSession.open("examples/sliders.py") as app:
            await app.change("amplitude", value=3)        # as if the user moved the slider
            assert max(app.model("source").data["y"]) > 2.9

The session is built as the server builds one (lifecycle hooks, ``modify_doc``, curdoc bound),
widget changes run the app's ``on_change`` and ``on_event`` callbacks under the document lock
as a browser's would, and ``wait_for`` lets periodic and timeout callbacks run. Nothing is
served: no socket, no database unless the app uses one.
"""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from bokeh.events import ButtonClick, Event
from bokeh.model import Model

from .application_context import ApplicationContext
from .registry import AppSpec, build_application
from .request_data import RequestProxy
from .session import ServerSession

__all__ = ("AppSession",)

_ids = itertools.count(1)


class AppSession:
    """One live session of an app, driven from a test."""

    def __init__(self, context: ApplicationContext, session: ServerSession) -> None:
        self.context = context
        self.session = session

    @classmethod
    @asynccontextmanager
    async def open(cls, app: AppSpec, *, arguments: Mapping[str, str] | None = None, user: Any = None,
                   url: str = "/app") -> AsyncIterator[AppSession]:
        """Build a session of ``app`` (a script, directory, notebook, ``"module:func"`` or callable).

        ``arguments`` are the page's query arguments (``session_context.request.arguments``) and
        ``user`` is ``session_context.request.user``. The session and its hooks end with the block.
        """
        context = ApplicationContext(build_application(app), url=url)
        await context.run_load_hook()
        request = RequestProxy(
            arguments={k: [str(v).encode()] for k, v in (arguments or {}).items()},
            cookies={}, headers={}, path=url, uri=url, host="testserver", protocol="http", remote_ip="127.0.0.1",
            underlying={"user": user} if user is not None else None,
        )
        try:
            session = await context.create_session_if_needed(f"test-session-{next(_ids)}", request)
            yield cls(context, session)
        finally:
            await context.discard_all_sessions()
            await context.run_unload_hook()
            await context.worker.stop(timeout=5.0)

    @property
    def document(self) -> Any:
        return self.session.document

    def model(self, name: str) -> Any:
        """The document's model called ``name`` (KeyError when there is none)."""
        found = self.document.select_one({"name": name})
        if found is None:
            raise KeyError(f"no model named {name!r} in the document")
        return found

    async def change(self, name: str, **properties: Any) -> None:
        """Set properties of the model ``name`` as a browser would: its callbacks run, under the lock."""
        model = self.model(name)
        await self.session.with_document_locked(model.update, **properties)

    async def trigger(self, name_or_model: str | Model, event: type[Event] | Event = ButtonClick) -> None:
        """Fire a UI event (a button click by default) at a model, running its ``on_event``/``on_click`` callbacks."""
        model = self.model(name_or_model) if isinstance(name_or_model, str) else name_or_model
        instance = event(model) if isinstance(event, type) else event
        await self.session.with_document_locked(self.document.callbacks.trigger_event, instance)

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Let the session's callbacks run until ``condition()`` is truthy; TimeoutError after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.session.with_document_locked(condition)
            if value:
                return value
            if loop.time() > deadline:
                raise TimeoutError(f"condition still false after {timeout} s")
            await asyncio.sleep(0.01)
