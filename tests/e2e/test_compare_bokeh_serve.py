"""The comparison apps under ``bokeh serve`` and under ``runbokeh``: the same document after the same changes.

One ``bokeh serve`` (the bokeh package's own server, the reference) and one ``runbokeh`` serve
every app of ``COMPARED``; for each, a ``bokeh.client`` session on each server makes the same
widget changes, waits until each server's answer arrived, and the two documents, serialized with
model ids replaced by their order of first appearance, must be equal.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .test_client import client_sessions, model, pump_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("hard_timeout")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Step = tuple[str, str, Any, Callable[[Any], bool]]  # model name, property, value, "the server answered"


def _text(name: str, wanted: str) -> Callable[[Any], bool]:
    return lambda session: wanted in model(session, name).text


def _figure_titled(wanted: str) -> Callable[[Any], bool]:
    return lambda session: any(getattr(getattr(root, "title", None), "text", None) == wanted
                               for root in session.document.roots[0].children)


def _sized(session: Any) -> bool:
    plot = session.document.roots[0].children[1]
    return len(set(plot.renderers[0].data_source.data["size"])) > 1


COMPARED: dict[str, list[Step]] = {
    "selection_histogram": [
        ("bins", "value", 20, lambda s: len(model(s, "counts").data["left"]) == 20),
        ("points", "selected.indices", list(range(50)), lambda s: sum(model(s, "counts").data["selected"]) == 50),
    ],
    "stocks": [
        ("first", "value", "CCC", _text("stats", "CCC vs")),
        ("second", "value", "DDD", _text("stats", "CCC vs DDD")),
    ],
    "crossfilter": [
        ("x", "value", "origin", _figure_titled("power vs origin")),
        ("y", "value", "acceleration", _figure_titled("acceleration vs origin")),
        ("size", "value", "weight", _sized),
    ],
    "widget_gallery": [
        ("slider", "value", 75, _text("log", "slider=75")),
        ("text", "value", "bokeh", _text("log", "text=bokeh")),
        ("checkbox", "active", [0, 2], _text("log", "checkbox=[0, 2]")),
        ("select", "value", "blue", _text("log", "select=blue")),
    ],
}


def canonical(doc: Any) -> Any:
    """The document's JSON with every model id replaced by the order it first appears in."""
    ids: dict[str, str] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key in sorted(value):
                item = value[key]
                if key == "id" and isinstance(item, str):
                    out[key] = ids.setdefault(item, f"model-{len(ids)}")
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(json.loads(json.dumps(doc.to_json(deferred=False), default=str)))


@pytest.fixture(scope="module")
def apps() -> list[str]:
    return [str(EXAMPLES / f"{name}.py") for name in COMPARED]


@pytest.fixture(scope="module")
def bokeh_serve(apps, free_port, server_process, tmp_path_factory) -> Any:
    port = free_port()
    log = tmp_path_factory.mktemp("bokeh-serve") / "bokeh-serve.log"
    server = server_process(
        [sys.executable, "-m", "bokeh", "serve", *apps, "--address", "127.0.0.1", "--port", str(port),
         "--allow-websocket-origin", f"127.0.0.1:{port}"],
        port=port, log_path=log, ready_path="/static/js/bokeh.min.js",
    )
    server.start(timeout=90)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runbokeh(apps, free_port, bokeh_server_factory) -> Any:
    port = free_port()
    return bokeh_server_factory(*apps, "--allow-websocket-origin", f"127.0.0.1:{port}", port=port)


def _set(session: Any, name: str, prop: str, value: Any) -> None:
    target = model(session, name)
    *path, last = prop.split(".")
    for part in path:
        target = getattr(target, part)
    setattr(target, last, value)


@pytest.mark.parametrize("app", list(COMPARED))
def test_the_same_changes_give_the_same_document_as_bokeh_serve(app, bokeh_serve, runbokeh):
    urls = {"bokeh serve": f"http://127.0.0.1:{bokeh_serve.port}", "runbokeh": runbokeh.url}
    with client_sessions(lambda server: f"{urls[server]}/{app}") as open_session:
        sessions = {server: open_session(server) for server in urls}
        reference, ours = sessions["bokeh serve"], sessions["runbokeh"]
        assert canonical(ours.document) == canonical(reference.document), "the documents differ when pulled"

        for name, prop, value, answered in COMPARED[app]:
            for server, session in sessions.items():
                _set(session, name, prop, value)
                assert pump_until(session, lambda s=session: answered(s)), f"{server} did not answer {name}.{prop}"
            assert canonical(ours.document) == canonical(reference.document), f"the documents differ after {name}.{prop}"


def test_the_servers_logged_no_errors(bokeh_serve, runbokeh):
    assert runbokeh.log_problems() == [], runbokeh.log_tail(80)
    assert bokeh_serve.log_problems() == [], bokeh_serve.log_tail(80)
