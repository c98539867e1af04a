"""Big messages are parsed off the event loop, with the same result and errors as bokeh's parsing."""
from __future__ import annotations

import json
import threading

import pytest
from bokeh.protocol import Protocol
from bokeh.protocol.exceptions import MessageError
from bokeh.protocol.receiver import Receiver

from waiting import eventually

from bokehserver.receiving import OFF_LOOP_BYTES, YieldingProtocol, consume, fragment_size


def _fragments(content: dict) -> list[str]:
    return [json.dumps({"msgid": "m1", "msgtype": "PATCH-DOC"}), "{}", json.dumps(content)]


BIG = {"events": [{"kind": "ModelChanged", "model": {"id": "p1"}, "attr": "data",
                   "new": {"type": "map", "entries": [["x", [i / 7 for i in range(40_000)]], ["n", list(range(20_000))],
                                                      ["s", ["a"] * 10], ["o", [{"k": None, "t": True}]]]}}]}


async def _receive(protocol: Protocol, fragments: list[str]):
    receiver = Receiver(protocol)
    message = None
    for fragment in fragments:
        message = await consume(receiver, fragment, fragment_size(fragment))
    return message


async def test_a_big_message_is_parsed_off_the_loop_to_what_bokeh_parses():
    threads: list[int] = []

    class Recording(YieldingProtocol):
        def assemble(self, *args):
            threads.append(threading.get_ident())
            return super().assemble(*args)

    fragments = _fragments(BIG)
    assert len(fragments[2]) > OFF_LOOP_BYTES
    ours = await _receive(Recording(), fragments)
    theirs = await _receive(Protocol(), fragments)
    assert threads and threads[0] != threading.get_ident()
    assert (ours.msgtype, ours.header, ours.metadata, ours.content) == (theirs.msgtype, theirs.header, theirs.metadata, theirs.content)
    assert ours.content == BIG


async def test_small_messages_stay_on_the_loop():
    threads: list[int] = []

    class Recording(YieldingProtocol):
        def assemble(self, *args):
            threads.append(threading.get_ident())
            return super().assemble(*args)

    message = await _receive(Recording(), _fragments({"events": []}))
    assert message.content == {"events": []} and threads == [threading.get_ident()]


async def test_a_malformed_big_content_is_a_message_error():
    fragments = _fragments(BIG)
    fragments[2] = fragments[2][:-5]
    with pytest.raises(MessageError, match="content could not be decoded"):
        await _receive(YieldingProtocol(), fragments)


def test_fragment_size_counts_utf8_bytes():
    assert fragment_size("abc") == 3
    assert fragment_size("é") == 2
    assert fragment_size(b"\x00\x01") == 2


async def test_a_big_patch_through_the_consumer_is_applied_and_answered_ok(web_app, open_session, bk):
    from bokeh.models import ColumnDataSource

    def doc_with_source(doc):
        doc.add_root(ColumnDataSource(data={"x": [1.0]}, name="source"))

    app = web_app({"/app": doc_with_source})
    comm = await open_session("/app")
    reply, _ = await bk.request(comm, bk.protocol.create("PULL-DOC-REQ"))
    source_id = bk.models_by_name(reply.content["doc"])["source"]["id"]
    xs = [i / 3 for i in range(60_000)]
    content = {"events": [{"kind": "ModelChanged", "model": {"id": source_id}, "attr": "data",
                           "new": {"type": "map", "entries": [["x", xs]]}}]}
    frames = _fragments(content)
    assert len(frames[2]) > OFF_LOOP_BYTES
    await bk.send_frames(comm, frames)
    answer = await bk.read_message(comm)
    assert (answer.msgtype, answer.header.get("reqid")) == ("OK", "m1")
    [session] = app.get_sessions("/app")
    assert list(session.document.get_model_by_name("source").data["x"]) == xs
    # a broken big message still closes 4001, as a small one does
    frames[2] = frames[2][:-3]
    await bk.send_frames(comm, [json.dumps({"msgid": "m2", "msgtype": "PATCH-DOC"}), "{}", frames[2]])
    code, reason = await bk.read_close(comm)
    assert code == 4001 and "content could not be decoded" in reason


async def test_the_receiver_lets_go_of_a_parsed_message_at_once():
    import gc
    import weakref

    from bokehserver import _compat

    receiver = Receiver(YieldingProtocol())
    for fragment in _fragments(BIG):
        message = await consume(receiver, fragment, fragment_size(fragment))
    gone = weakref.ref(message)
    _compat.forget_received(receiver)
    gc.disable()  # freed by reference counting alone (once the loop lets go of the worker's future)
    try:
        del message
        await eventually(lambda: gone() is None, timeout=10, what="the parsed message is freed")
    finally:
        gc.enable()
