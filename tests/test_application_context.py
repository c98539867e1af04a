"""ApplicationContext: session creation, hooks, expiry, and app-wide callbacks."""
from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from pathlib import Path

import pytest
from bokeh.application import Application
from bokeh.application.handlers import DirectoryHandler, FunctionHandler
from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.document import Document
from bokeh.io import curdoc
from bokeh.models import Div
from packaging.version import Version

from bokehserver import _compat
from bokehserver._compat import versions
from bokehserver.application_context import ApplicationContext, BokehSessionContext

from waiting import eventually

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def _stop(ctx: ApplicationContext) -> None:
    await ctx.discard_all_sessions()
    await ctx.run_unload_hook()
    await ctx.worker.stop(timeout=1.0)


async def test_shared_feed_reaches_every_session_from_one_periodic_callback():
    ctx = ApplicationContext(Application(DirectoryHandler(filename=str(EXAMPLES / "shared_feed"))), url="/shared_feed")
    try:
        await ctx.run_load_hook()
        sessions = [await ctx.create_session_if_needed(f"viewer{i}") for i in range(3)]

        def columns():
            return [list(s.document.select_one({"name": "source"}).data["price"]) for s in sessions]

        await eventually(lambda: all(len(c) >= 2 for c in columns()))
        await ctx.run_unload_hook()  # stop publishing; an update in flight still reaches everyone
        await eventually(lambda: len({tuple(c[-2:]) for c in columns()}) == 1, what="every viewer got the last updates")
    finally:
        await _stop(ctx)


async def test_update_sessions_applies_once_per_live_session_and_isolates_failures():
    def modify_doc(doc):
        doc.add_root(Div(name="d", text="start"))

    ctx = ApplicationContext(Application(FunctionHandler(modify_doc)), url="/u")
    try:
        a = await ctx.create_session_if_needed("a")
        b = await ctx.create_session_if_needed("b")

        def apply(doc, text):
            if doc is a.document:
                raise RuntimeError("one session's failure")
            doc.select_one({"name": "d"}).text = text

        updated = await ctx.server_context.update_sessions(apply, "new")
        assert updated == 1
        assert b.document.select_one({"name": "d"}).text == "new"
        assert a.document.select_one({"name": "d"}).text == "start"
    finally:
        await _stop(ctx)


async def test_async_session_hooks_are_awaited_and_destroy_runs_after_callbacks_are_gone():
    order: list[str] = []

    class Hooks(LifecycleHandler):
        def __init__(self):
            super().__init__()

            async def created(session_context):
                await asyncio.sleep(0.01)
                order.append("created")

            async def destroyed(session_context):
                order.append(f"destroyed:{session_context.session.callback_count}:{session_context.destroyed}")

            self._on_session_created = created
            self._on_session_destroyed = destroyed

    def modify_doc(doc):
        order.append("modify_doc")
        doc.add_root(Div())
        doc.add_periodic_callback(lambda: None, 1000)

    ctx = ApplicationContext(Application(Hooks(), FunctionHandler(modify_doc)), url="/h")
    session = await ctx.create_session_if_needed("h1")
    assert session.callback_count == 1
    session.request_expiration()
    assert await ctx.cleanup_sessions(15000) == 1
    assert order == ["created", "modify_doc", "destroyed:0:True"]
    assert ctx.sessions == []
    await ctx.worker.stop(timeout=1.0)


async def test_the_session_context_is_the_documents_and_knows_it():
    seen = []

    def modify_doc(doc):
        seen.append((curdoc() is doc, doc.session_context.document is doc, doc.session_context.id))
        doc.add_root(Div())

    ctx = ApplicationContext(Application(FunctionHandler(modify_doc)), url="/c")
    session = await ctx.create_session_if_needed("c1")
    assert seen == [(True, True, "c1")]
    assert ctx.get_session_context("c1").document is session.document
    await _stop(ctx)


def test_a_bokeh_that_adds_abstract_members_still_gets_session_contexts(monkeypatch):
    real = versions.installed
    monkeypatch.setattr(versions, "installed", lambda dist: Version("3.99.0") if dist == "bokeh" else real(dist))

    class NewerSessionContext(BokehSessionContext):  # as if bokeh had added these to SessionContext
        @property
        @abstractmethod
        def browser_tab(self) -> str: ...

        @abstractmethod
        def reload(self) -> None: ...

    _compat.complete_session_context(NewerSessionContext)
    doc = Document()
    context = NewerSessionContext("s1", None, doc)
    assert context.document is doc and context.browser_tab is None and context.reload() is None


async def test_unused_sessions_expire_after_their_lifetime_only():
    ctx = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Div()))), url="/e")
    try:
        [session] = [await ctx.create_session_if_needed("e1")]
        assert await ctx.cleanup_sessions(10_000) == 0
        await eventually(lambda: session.milliseconds_since_last_unsubscribe >= 50)
        assert await ctx.cleanup_sessions(50) == 1
        assert ctx.sessions == []
    finally:
        await _stop(ctx)


async def test_concurrent_requests_for_one_id_build_one_session():
    builds: list[int] = []

    def modify_doc(doc):
        builds.append(1)
        doc.add_root(Div())

    ctx = ApplicationContext(Application(FunctionHandler(modify_doc)), url="/c")
    try:
        sessions = await asyncio.gather(*(ctx.create_session_if_needed("same") for _ in range(5)))
        assert len({id(s) for s in sessions}) == 1
        assert builds == [1]
    finally:
        await _stop(ctx)


async def test_failing_modify_doc_keeps_what_was_built_and_is_logged_once(caplog):
    def modify_doc(doc):
        doc.add_root(Div(name="built"))
        raise ZeroDivisionError("app bug")

    ctx = ApplicationContext(Application(FunctionHandler(modify_doc)), url="/f")
    session = await ctx.create_session_if_needed("f1")
    assert [root.name for root in session.document.roots] == ["built"]
    assert ctx.sessions == [session]
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "App /f failed to build the document of session f1" in error.getMessage()
    assert error.exc_info is not None and error.exc_info[0] is ZeroDivisionError
    await _stop(ctx)


async def test_an_application_subclass_builds_with_its_own_initialize_document(caplog):
    steps: list[str] = []

    class Around(Application):  # as Panel's Application does work around the handlers
        def initialize_document(self, doc):
            steps.append("before")
            try:
                super().initialize_document(doc)
            finally:
                steps.append("after")

    def modify_doc(doc):
        doc.add_root(Div(name="built"))
        raise ZeroDivisionError("app bug")

    ctx = ApplicationContext(Around(FunctionHandler(modify_doc)), url="/around")
    session = await ctx.create_session_if_needed("a1")
    assert steps == ["before", "after"]
    assert [root.name for root in session.document.roots] == ["built"]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    await _stop(ctx)


async def test_expired_script_sessions_release_their_modules():
    import sys

    from bokehserver.registry import build_application

    ctx = ApplicationContext(build_application(EXAMPLES / "sliders.py"), url="/sliders")
    before = {name for name in sys.modules if name.startswith("bokeh_app_")}
    for i in range(3):
        (await ctx.create_session_if_needed(f"m{i}")).request_expiration()
    assert len({name for name in sys.modules if name.startswith("bokeh_app_")} - before) == 3
    assert await ctx.cleanup_sessions(15000) == 3
    assert {name for name in sys.modules if name.startswith("bokeh_app_")} - before == set()
    await ctx.worker.stop(timeout=1.0)
