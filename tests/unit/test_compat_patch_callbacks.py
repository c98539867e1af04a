"""Which client PATCH-DOCs run no app code, so that a session applies them on the loop."""
from __future__ import annotations

import threading

import pytest
from bokeh.core.properties import Int
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Model, Range1d, Slider
from bokeh.plotting import figure
from bokeh.protocol import Protocol

from bokehserver._compat import patch_callbacks
from bokehserver.app_code import Lane
from bokehserver.connection import ServerConnection
from bokehserver.session import ServerSession

protocol = Protocol()


class Counter(Model):
    """A model class of an app's own (its code may run when a property is set)."""

    count = Int(0)


class CountingLane(Lane):
    """A session's lane that notes what it was asked to run."""

    __slots__ = ("ran",)

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[object] = []

    async def run(self, func, *args, **kwargs):
        self.ran.append(func)
        return await super().run(func, *args, **kwargs)


def session_with_plot(lane: Lane | None = None) -> ServerSession:
    doc = Document()
    plot = figure(name="plot")
    plot.line([1, 2], [3, 4])
    doc.add_root(plot)
    doc.add_root(Slider(name="slider", start=0, end=10, value=1))
    doc.add_root(ColumnDataSource(data={"x": [1]}, name="source"))
    doc.add_root(Counter(name="counter"))
    return ServerSession("s", doc, lane=lane)


def client_patch(session: ServerSession, change):
    """The PATCH-DOC a client with a synced copy of the session's document sends for ``change``."""
    copy = Document.from_json(session.document.to_json(deferred=False))
    events = []
    copy.on_change(events.append)
    change(copy)
    return protocol.create("PATCH-DOC", events)


def pan(doc: Document) -> None:
    plot = doc.select_one({"name": "plot"})
    plot.x_range.start, plot.x_range.end = 0.5, 2.5


def runs_app_code(session: ServerSession, change) -> bool:
    return patch_callbacks.runs_app_code(session.document, client_patch(session, change).content, session)


async def test_a_pan_or_a_slider_no_python_listens_to_runs_no_app_code():
    session = session_with_plot()
    assert not runs_app_code(session, pan)
    assert not runs_app_code(session, lambda d: setattr(d.select_one({"name": "slider"}), "value", 4))


@pytest.mark.parametrize("listener", ["model", "other attribute", "document"])
async def test_any_python_listener_on_the_model_or_the_document_means_app_code(listener):
    session = session_with_plot()
    x_range = session.document.select_one({"name": "plot"}).x_range
    if listener == "model":
        x_range.on_change("start", lambda attr, old, new: None)
    elif listener == "other attribute":
        x_range.on_change("bounds", lambda attr, old, new: None)
    else:
        session.document.on_change(lambda event: None)
    assert runs_app_code(session, pan)


async def test_data_changes_new_models_app_model_classes_and_unknown_models_mean_app_code():
    session = session_with_plot()
    assert runs_app_code(session, lambda d: d.select_one({"name": "source"}).stream({"x": [2]}))
    assert runs_app_code(session, lambda d: setattr(d.select_one({"name": "source"}), "data", {"x": [5, 6]}))
    assert runs_app_code(session, lambda d: d.add_root(Slider(start=0, end=1, value=0)))
    assert runs_app_code(session, lambda d: setattr(d.select_one({"name": "plot"}), "x_range", Range1d(0, 1)))
    assert runs_app_code(session, lambda d: setattr(d.select_one({"name": "counter"}), "count", 3))
    assert not runs_app_code(session, lambda d: setattr(d.select_one({"name": "plot"}).x_range, "bounds", (0, 9)))
    selection = session.document.select_one({"name": "source"}).selected.id
    for indices, app_code in (([1, 2, 3], False), (list(range(257)), True)):  # a long value is checked off the loop
        content = {"events": [{"kind": "ModelChanged", "model": {"id": selection}, "attr": "indices", "new": indices}]}
        assert patch_callbacks.runs_app_code(session.document, content, session) is app_code
    unknown = {"events": [{"kind": "ModelChanged", "model": {"id": "nope"}, "attr": "start", "new": 1}]}
    assert patch_callbacks.runs_app_code(session.document, unknown, session)
    for content in ({}, {"events": []}, {"events": "x"}, None, {"events": [None]}):
        assert patch_callbacks.runs_app_code(session.document, content, session)


async def test_an_unproven_bokeh_takes_every_patch_to_run_app_code(monkeypatch):
    session = session_with_plot()
    monkeypatch.setattr(patch_callbacks, "proven", lambda name: False)
    assert runs_app_code(session, pan)


class RecordingSocket:
    def __init__(self) -> None:
        self.frames: list[str | bytes] = []

    async def send_frames(self, frames):
        self.frames.extend(frames)

    async def close_socket(self, code, reason):
        pass


async def test_a_patch_without_app_code_is_applied_on_the_loop_and_one_with_it_on_the_session_thread():
    lane = CountingLane()
    session = session_with_plot(lane)
    lane_runs = lane.ran
    patching = ServerConnection(protocol, RecordingSocket(), None, session)
    other_socket = RecordingSocket()
    ServerConnection(protocol, other_socket, None, session)
    await session.patch(client_patch(session, pan), patching)
    x_range = session.document.select_one({"name": "plot"}).x_range
    assert (x_range.start, x_range.end) == (0.5, 2.5) and lane_runs == []
    assert '"OK"' in patching._socket.frames[0] and any('"start"' in f for f in other_socket.frames if isinstance(f, str))

    threads = []
    x_range.on_change("start", lambda attr, old, new: threads.append(threading.get_ident()))
    await session.patch(client_patch(session, lambda d: setattr(d.select_one({"name": "plot"}).x_range, "start", 1.5)),
                        patching)
    assert len(lane_runs) == 1 and threads and threads[0] != threading.get_ident()
