"""bokehserver.testing.AppSession: an app driven from a test, without a browser or a server."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from bokeh.models import Button, Div

from bokehserver.testing import AppSession

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def test_a_slider_change_runs_the_apps_callback():
    async with AppSession.open(EXAMPLES / "sliders.py") as app:
        assert max(app.model("source").data["y"]) == pytest.approx(1, abs=0.01)
        await app.change("amplitude", value=3)
        assert max(app.model("source").data["y"]) == pytest.approx(3, abs=0.05)
        await app.change("title", value="three")
        assert app.model("plot").title.text == "three"


async def test_a_click_and_the_user_and_arguments_of_the_request():
    alice = SimpleNamespace(is_authenticated=True, get_username=lambda: "alice")
    async with AppSession.open(EXAMPLES / "whoami.py", user=alice) as app:
        assert app.model("greeting").text == "Hello, alice"
        await app.trigger("ask")
        assert app.model("answer").text == "You are alice."

    def modify_doc(doc):
        arg = doc.session_context.request.arguments["n"][0].decode()
        doc.add_root(Div(name="n", text=arg))

    async with AppSession.open(modify_doc, arguments={"n": "7"}) as app:
        assert app.model("n").text == "7"


async def test_wait_for_lets_periodic_callbacks_run_and_hooks_end_with_the_block():
    destroyed = []

    def modify_doc(doc):
        div = Div(name="ticks", text="0")
        doc.add_root(div)
        doc.add_root(Button(name="b"))
        doc.add_periodic_callback(lambda: setattr(div, "text", str(int(div.text) + 1)), 20)
        doc.on_session_destroyed(lambda ctx: destroyed.append(ctx.id))

    async with AppSession.open(modify_doc) as app:
        await app.wait_for(lambda: int(app.model("ticks").text) >= 3)
        with pytest.raises(KeyError, match="no model named 'nope'"):
            app.model("nope")
        with pytest.raises(TimeoutError):
            await app.wait_for(lambda: False, timeout=0.05)
        session_id = app.session.id
    assert destroyed == [session_id]
