"""ServerSession: locking, one serialization per change for every connection, prepared pulls."""
from __future__ import annotations

import json

import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Slider
from bokeh.protocol import Protocol

from bokehserver.application_context import ApplicationContext
from bokehserver.connection import ServerConnection
from bokehserver.session import ServerSession


class FakeSocket:
    def __init__(self) -> None:
        self.frames: list[str | bytes] = []

    async def send_frames(self, frames):
        self.frames.extend(frames)

    async def close_socket(self, code, reason):
        self.frames.append(f"closed {code}")


def _doc() -> Document:
    doc = Document()
    doc.add_root(Slider(start=0, end=10, value=1, name="s"))
    doc.add_root(ColumnDataSource(data={"x": list(range(1000))}, name="src"))
    return doc


def _connect(session: ServerSession) -> tuple[ServerConnection, FakeSocket]:
    socket = FakeSocket()
    return ServerConnection(Protocol(), socket, None, session), socket


async def test_a_change_is_serialized_once_and_the_same_frames_reach_every_connection(monkeypatch):
    session = ServerSession("s", _doc())
    sockets = [_connect(session)[1] for _ in range(5)]
    created = []
    import bokehserver.session as session_module

    real_create = session_module._protocol.create

    def counting_create(msgtype, *args, **kwargs):
        created.append(msgtype)
        return real_create(msgtype, *args, **kwargs)

    monkeypatch.setattr(session_module._protocol, "create", counting_create)
    await session.with_document_locked(lambda: setattr(session.document.select_one({"name": "s"}), "value", 5))
    assert created == ["PATCH-DOC"]
    assert all(len(s.frames) == 3 and s.frames == sockets[0].frames for s in sockets)
    assert json.loads(sockets[0].frames[2])["events"][0]["new"] == 5


async def test_changing_the_document_outside_its_lock_is_refused():
    session = ServerSession("s", _doc())
    _connect(session)
    with pytest.raises(RuntimeError, match="outside its lock"):
        session.document.select_one({"name": "s"}).value = 3


async def test_a_prepared_pull_is_reused_once_and_a_change_invalidates_it():
    session = ServerSession("s", _doc())
    connection, _ = _connect(session)
    request = Protocol().create("PULL-DOC-REQ")

    await session.prepare_pull()
    prepared = session._pull_cache[1]
    reply = await session.pull(request, connection)
    assert reply[1:] is not None and reply[1:] == prepared
    assert json.loads(reply[0])["reqid"] == request.header["msgid"]
    assert session._pull_cache is None, "the prepared reply is dropped once served"

    await session.prepare_pull()
    await session.with_document_locked(lambda: setattr(session.document.select_one({"name": "s"}), "value", 7))
    fresh = await session.pull(request, connection)
    content = json.loads(fresh[2])
    slider = next(r for r in content["doc"]["roots"] if r["attributes"].get("name") == "s")
    assert slider["attributes"]["value"] == 7


async def test_page_request_prepares_the_pull_in_the_background():
    from bokeh.application import Application
    from bokeh.application.handlers import FunctionHandler

    context = ApplicationContext(Application(FunctionHandler(lambda doc: doc.add_root(Slider(start=0, end=1, value=0)))), url="/p")
    session = await context.create_session_if_needed("p1")
    task = context.worker.spawn(session.prepare_pull())
    await task
    assert session._pull_cache is not None
    await context.discard_all_sessions()
    await context.worker.stop()


async def test_a_socket_that_fails_to_send_is_dropped_and_the_others_still_get_the_change(caplog):
    class BrokenSocket(FakeSocket):
        async def send_frames(self, frames):
            raise ConnectionResetError("peer went away")

    session = ServerSession("s", _doc())
    broken = ServerConnection(Protocol(), BrokenSocket(), None, session)
    healthy, socket = _connect(session)
    await session.with_document_locked(lambda: setattr(session.document.select_one({"name": "s"}), "value", 6))
    assert broken.closed and session.connections == [healthy]
    assert len(socket.frames) == 3
    assert any("peer went away" in r.getMessage() and r.exc_info is None for r in caplog.records)


class WritesSocket(FakeSocket):
    """A socket that can write several messages at once, recording each write and the order of writes."""

    def __init__(self, name: str, order: list[str]) -> None:
        super().__init__()
        self.name, self.order = name, order
        self.writes: list[list[tuple[str | bytes, ...]]] = []

    async def send_frames(self, frames):
        await self.send_messages([frames])

    async def send_messages(self, messages):
        self.order.append(self.name)
        self.writes.append(list(messages))
        for frames in messages:
            self.frames.extend(frames)


def _client_patch(session: ServerSession, change) -> object:
    """The PATCH-DOC a client with a copy of the session's document sends for ``change``."""
    copy = Document.from_json(session.document.to_json())
    events = []
    copy.on_change(events.append)
    change(copy)
    return Protocol().create("PATCH-DOC", events)


def _msgtypes(write) -> list[str]:
    return [json.loads(frames[0])["msgtype"] for frames in write]


def _answering_session() -> ServerSession:
    """A session whose app answers a slider move by replacing the source's data."""
    doc = _doc()
    source = doc.select_one({"name": "src"})
    doc.select_one({"name": "s"}).on_change("value", lambda attr, old, new: setattr(source, "data", {"x": [new]}))
    return ServerSession("s", doc)


async def test_a_patch_s_ok_goes_out_with_the_app_s_changes_in_one_write_after_the_other_connections():
    session = _answering_session()
    source = session.document.select_one({"name": "src"})
    order: list[str] = []
    patching = ServerConnection(Protocol(), WritesSocket("patching", order), None, session)
    other = ServerConnection(Protocol(), WritesSocket("other", order), None, session)
    message = _client_patch(session, lambda d: setattr(d.select_one({"name": "s"}), "value", 4))

    assert await session.patch(message, patching) is None  # the OK is sent, not returned

    assert order == ["other", "patching"], "the other connections hear of the change before the OK goes back"
    [to_other] = other._socket.writes
    assert _msgtypes(to_other) == ["PATCH-DOC", "PATCH-DOC"]  # the slider's move, then the app's answer
    [to_patching] = patching._socket.writes
    assert _msgtypes(to_patching) == ["PATCH-DOC", "OK"]  # its own move is not echoed back
    data_patch = json.loads(to_patching[0][2])["events"][0]
    assert data_patch["model"]["id"] == source.id and source.data == {"x": [4]}
    assert json.loads(to_patching[1][0])["reqid"] == message.header["msgid"]
    assert session.traffic.messages_out == 4, "every message is counted, written together or not"


async def test_a_patch_the_app_does_not_answer_gets_its_ok_alone_and_a_failing_patch_gets_no_ok():
    session = ServerSession("s", _doc())
    order: list[str] = []
    patching = ServerConnection(Protocol(), WritesSocket("patching", order), None, session)
    message = _client_patch(session, lambda d: setattr(d.select_one({"name": "s"}), "value", 2))
    await session.patch(message, patching)
    assert [_msgtypes(write) for write in patching._socket.writes] == [["OK"]]

    def fail(attr, old, new):
        raise ValueError("no")

    session.document.select_one({"name": "s"}).on_change("value", fail)
    with pytest.raises(ValueError):
        await session.patch(_client_patch(session, lambda d: setattr(d.select_one({"name": "s"}), "value", 3)), patching)
    assert len(patching._socket.writes) == 1, "the protocol handler answers a failure with ERROR"


async def test_a_socket_without_multi_message_writes_gets_the_messages_one_by_one_in_order():
    session = _answering_session()
    connection, socket = _connect(session)  # FakeSocket: send_frames only
    message = _client_patch(session, lambda d: setattr(d.select_one({"name": "s"}), "value", 5))
    await session.patch(message, connection)
    headers = [json.loads(frame) for frame in socket.frames if isinstance(frame, str) and '"msgtype"' in frame]
    assert [h["msgtype"] for h in headers] == ["PATCH-DOC", "OK"]
    assert session.traffic.messages_out == 2


async def test_a_connection_whose_several_message_write_fails_is_dropped_and_the_others_keep_theirs(caplog):
    class BrokenWrites(WritesSocket):
        async def send_messages(self, messages):
            raise ConnectionResetError("peer went away mid-write")

    session = _answering_session()
    source = session.document.select_one({"name": "src"})
    order: list[str] = []
    patching = ServerConnection(Protocol(), BrokenWrites("patching", order), None, session)
    other = ServerConnection(Protocol(), WritesSocket("other", order), None, session)
    await session.patch(_client_patch(session, lambda d: setattr(d.select_one({"name": "s"}), "value", 8)), patching)
    assert patching.closed and session.connections == [other]
    assert [_msgtypes(write) for write in other._socket.writes] == [["PATCH-DOC", "PATCH-DOC"]]
    assert session.traffic.messages_out == 2, "what was not written is not counted"
    assert any("mid-write" in r.getMessage() and r.exc_info is None for r in caplog.records)

    await session.with_document_locked(lambda: setattr(source, "data", {"x": [9]}))  # the session goes on
    assert [_msgtypes(write) for write in other._socket.writes][-1] == ["PATCH-DOC"]
