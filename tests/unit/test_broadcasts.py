"""broadcast(): a marked function runs on every session of an app; anything else is refused before sending."""
from __future__ import annotations

import logging

import pytest
from bokeh.models import Div

from bokehserver import broadcast


def doc_with_echo(doc):
    doc.add_root(Div(name="echo", text="start"))


async def test_without_a_shared_layer_the_sessions_of_this_process_are_updated(web_app):
    app = web_app({"/app": doc_with_echo, "/other": doc_with_echo})
    context = app.context_for("/app")
    sessions = [await context.create_session_if_needed(name) for name in ("a", "b")]
    other = await app.context_for("/other").create_session_if_needed("c")
    await broadcast("/app", "examples.broadcasts.set_text", "echo", "hello")
    assert [s.document.get_model_by_name("echo").text for s in sessions] == ["hello", "hello"]
    assert other.document.get_model_by_name("echo").text == "start"


async def test_an_unmarked_function_is_refused_before_anything_is_sent(web_app):
    app = web_app({"/app": doc_with_echo})
    session = await app.context_for("/app").create_session_if_needed("a")
    with pytest.raises(ValueError, match="is not marked with @bokehserver.updates_sessions"):
        await broadcast("/app", "examples.broadcasts.not_marked", "echo", "hello")
    with pytest.raises(ImportError):
        await broadcast("/app", "examples.broadcasts.missing", "echo", "hello")
    assert session.document.get_model_by_name("echo").text == "start"


async def test_with_no_server_here_a_broadcast_says_it_reached_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="bokehserver.broadcasts"):
        await broadcast("/app", "examples.broadcasts.set_text", "echo", "hello")
    assert "reaches no session" in caplog.text
