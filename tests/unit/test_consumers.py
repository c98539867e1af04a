"""SessionConsumer over a WebsocketCommunicator: handshake, patches both ways, and bad input."""
from __future__ import annotations

import json
import logging
import traceback
from typing import Any

import bokeh
import pytest
from bokeh.document import Document
from bokeh.events import ButtonClick
from bokeh.models import Button, Div, Slider
from bokeh.util.token import get_session_id

from bokehserver.consumers import CloseCode
from waiting import eventually

SECRET = "x" * 44


@pytest.fixture
def slider_server(web_app, bk):
    return web_app({"/app": bk.slider_doc, "/other": bk.div_doc})


async def pull(bk, comm) -> dict[str, Any]:
    request = bk.protocol.create("PULL-DOC-REQ")
    reply, before = await bk.request(comm, request)
    assert before == []
    assert reply.msgtype == "PULL-DOC-REPLY"
    return reply.content["doc"]


async def refused_with(bk, comm) -> tuple[int | None, str | None]:
    """Connect and return the close code and reason, whether the close comes before or after accept."""
    connected, code = await comm.connect(timeout=bk.TIMEOUT)
    if not connected:
        return code, None
    return await bk.read_close(comm)


async def assert_still_serves(bk, open_session, app_path: str = "/app", **kwargs: Any) -> None:
    comm = await open_session(app_path, **kwargs)
    doc = await pull(bk, comm)
    assert doc["roots"], "a fresh session after a refused one should still get its document"


def assert_warned_without_traceback(bokeh_warnings, *fragments: str) -> None:
    records = bokeh_warnings()
    assert records, "expected a warning from a bokehserver logger"
    assert all(r.exc_info is None for r in records), [r.getMessage() for r in records if r.exc_info]
    messages = " | ".join(r.getMessage() for r in records)
    for fragment in fragments:
        assert fragment in messages


def slider_ids(doc_json: dict[str, Any], bk) -> tuple[str, str]:
    models = bk.models_by_name(doc_json)
    return models["s"]["id"], models["d"]["id"]


def changes(messages, model_id: str) -> list[dict[str, Any]]:
    """ModelChanged events for ``model_id`` among PATCH-DOC messages."""
    found = []
    for message in messages:
        if message.msgtype != "PATCH-DOC":
            continue
        for event in message.content["events"]:
            if event.get("kind") == "ModelChanged" and event["model"]["id"] == model_id:
                found.append(event)
    return found


async def test_connect_accepts_bokeh_subprotocol_and_sends_ack_first(slider_server, ws, bk):
    comm = ws("/app")
    assert await comm.connect(timeout=bk.TIMEOUT) == (True, "bokeh")
    ack = await bk.read_message(comm)
    assert ack.msgtype == "ACK"
    assert "num_buffers" not in ack.header and "reqid" not in ack.header
    assert ack.content == {}


async def test_pull_doc_reply_answers_the_request_with_the_apps_models(slider_server, open_session, bk):
    comm = await open_session("/app")
    request = bk.protocol.create("PULL-DOC-REQ")
    reply, before = await bk.request(comm, request)
    assert before == []
    assert reply.msgtype == "PULL-DOC-REPLY"
    assert reply.reqid == request.header["msgid"]
    assert reply.header["num_buffers"] == 0  # bokeh always writes it on PULL-DOC-REPLY
    doc = reply.content["doc"]
    assert doc["title"] == "slider app"
    models = bk.models_by_name(doc)
    assert models["s"]["name"] == "Slider"
    assert models["s"]["attributes"]["value"] == 1
    assert models["d"]["name"] == "Div"
    assert models["d"]["attributes"]["text"] == "value=1"
    # the client can rebuild the document from the reply
    client = Document.from_json(doc)
    assert client.get_model_by_name("s").value == 1


async def test_server_info_reply_carries_version_info(slider_server, open_session, bk):
    comm = await open_session("/app")
    request = bk.protocol.create("SERVER-INFO-REQ")
    reply, _ = await bk.request(comm, request)
    assert reply.msgtype == "SERVER-INFO-REPLY"
    assert reply.reqid == request.header["msgid"]
    assert reply.content["version_info"]["bokeh"] == bokeh.__version__
    assert reply.content["version_info"]["server"] == bokeh.__version__


async def test_frames_sent_before_the_ack_is_read_are_answered_after_it(slider_server, ws, bk):
    comm = ws("/app")
    assert await comm.connect(timeout=bk.TIMEOUT) == (True, "bokeh")
    request = bk.protocol.create("PULL-DOC-REQ")
    await bk.send_message(comm, request)
    first = await bk.read_message(comm)
    assert first.msgtype == "ACK"
    second = await bk.read_message(comm)
    assert second.msgtype == "PULL-DOC-REPLY"
    assert second.reqid == request.header["msgid"]


@pytest.mark.parametrize("gathered", [False, True])  # frame by frame, or as our daphne hands a message over
async def test_client_patch_is_applied_and_broadcast_to_other_connections_only(slider_server, open_session, bk, gathered):
    token = bk.make_token()
    alice = await open_session("/app", token)
    bob = await open_session("/app", token)
    doc = await pull(bk, alice)
    await pull(bk, bob)
    slider_id, div_id = slider_ids(doc, bk)
    [session] = slider_server.get_sessions("/app")
    received = session.traffic.messages_in

    patch = bk.client_patch(doc, lambda d: setattr(d.get_model_by_name("s"), "value", 7))
    reply, before = await bk.request(alice, patch, gathered=gathered)

    assert reply.msgtype == "OK"
    assert reply.reqid == patch.header["msgid"]
    # the change the server's callback made reaches the originator before its OK ...
    assert [e["new"] for e in changes(before, div_id) if e["attr"] == "text"] == ["value=7"]
    # ... but the originator's own change is not echoed back
    assert changes(before, slider_id) == []

    # the other connection hears about both, and only once each
    heard = [await bk.read_message(bob), await bk.read_message(bob)]
    assert all(m.msgtype == "PATCH-DOC" for m in heard)
    assert [(e["attr"], e["new"]) for e in changes(heard, slider_id)] == [("value", 7)]
    assert [(e["attr"], e["new"]) for e in changes(heard, div_id)] == [("text", "value=7")]
    assert await bob.receive_nothing(timeout=0.1)

    assert session.id == get_session_id(token)
    assert session.traffic.messages_in == received + 1
    assert session.document.get_model_by_name("s").value == 7
    assert session.document.get_model_by_name("d").text == "value=7"


async def test_patches_stay_within_their_session(slider_server, open_session, bk):
    mine = await open_session("/app")
    theirs = await open_session("/app")
    doc = await pull(bk, mine)
    await pull(bk, theirs)
    reply, _ = await bk.request(mine, bk.client_patch(doc, lambda d: setattr(d.get_model_by_name("s"), "value", 3)))
    assert reply.msgtype == "OK"
    assert await theirs.receive_nothing(timeout=0.1)
    assert bk.models_by_name(await pull(bk, theirs))["s"]["attributes"]["value"] == 1
    assert len(slider_server.get_sessions("/app")) == 2


def picky_doc(doc: Document) -> None:
    """A slider whose callback fails for the value 9."""
    slider = Slider(start=0, end=10, value=1, name="s")
    div = Div(text="ok", name="d")

    def changed(attr: str, old: Any, new: Any) -> None:
        if new == 9:
            raise ValueError("nine is not allowed")
        div.text = f"value={new}"

    slider.on_change("value", changed)
    doc.add_root(slider)
    doc.add_root(div)


async def test_a_failing_callback_gets_error_and_the_session_carries_on(web_app, open_session, bk, bokeh_warnings, caplog):
    server = web_app({"/picky": picky_doc})
    token = bk.make_token()
    comm = await open_session("/picky", token)
    doc = await pull(bk, comm)
    bad = bk.client_patch(doc, lambda d: setattr(d.get_model_by_name("s"), "value", 9))
    reply, _ = await bk.request(comm, bad)
    assert reply.msgtype == "ERROR"
    assert reply.reqid == bad.header["msgid"]
    assert "nine is not allowed" in reply.content["text"]
    assert reply.content["traceback"] is None  # no server paths or code reach a client
    assert "File \"" not in json.dumps(reply.content)
    # bokeh.client formats every ERROR it receives: that must work on ours
    from bokeh.protocol.messages.error import error

    received = error(reply.header, reply.metadata, reply.content)
    assert "nine is not allowed" in repr(received) and "File" not in repr(received)
    # the operator gets the app's failure once, at ERROR, with the traceback into the app's code
    errors = [r for r in caplog.records if r.name.startswith("bokehserver") and r.levelno >= logging.ERROR]
    assert len(errors) == 1 and get_session_id(token) in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert f'File "{__file__}"' in "".join(traceback.format_exception(*errors[0].exc_info))
    assert not bokeh_warnings()

    good = bk.client_patch(doc, lambda d: setattr(d.get_model_by_name("s"), "value", 5))
    reply, _ = await bk.request(comm, good)
    assert reply.msgtype == "OK"
    [session] = server.get_sessions("/picky")
    assert session.document.get_model_by_name("d").text == "value=5"


async def test_websocket_under_a_prefix(web_app, ws, open_session, bk):
    web_app({"/app": bk.slider_doc}, prefix="/pre")
    comm = await open_session("/pre/app")
    assert bk.models_by_name(await pull(bk, comm))["s"]["attributes"]["value"] == 1
    code, _ = await refused_with(bk, ws("/app"))
    assert code == CloseCode.NOT_FOUND


async def test_session_survives_a_disconnect_and_a_reconnect_gets_it_back(slider_server, open_session, bk):
    token = bk.make_token()
    first = await open_session("/app", token)
    doc = await pull(bk, first)
    patch = bk.client_patch(doc, lambda d: setattr(d.get_model_by_name("s"), "value", 4))
    reply, _ = await bk.request(first, patch)
    assert reply.msgtype == "OK"
    await first.disconnect(timeout=bk.TIMEOUT)

    [session] = slider_server.get_sessions("/app")
    assert session.connection_count == 0
    assert not session.destroyed

    second = await open_session("/app", token)
    models = bk.models_by_name(await pull(bk, second))
    assert models["s"]["attributes"]["value"] == 4
    assert models["d"]["attributes"]["text"] == "value=4"
    assert [s.id for s in slider_server.get_sessions("/app")] == [session.id]
    assert session.connection_count == 1


async def test_push_doc_replaces_the_document_then_ok(slider_server, open_session, bk):
    token = bk.make_token()
    pusher = await open_session("/app", token)
    watcher = await open_session("/app", token)
    await pull(bk, pusher)

    replacement = Document()
    replacement.add_root(Div(text="pushed", name="pushed"))
    replacement.title = "pushed title"
    push = bk.protocol.create("PUSH-DOC", replacement)
    reply, before = await bk.request(pusher, push)

    assert reply.msgtype == "OK"
    assert reply.reqid == push.header["msgid"]
    kinds = [e["kind"] for m in before for e in m.content["events"]]
    assert "RootAdded" in kinds and "RootRemoved" in kinds

    [session] = slider_server.get_sessions("/app")
    assert session.document.get_model_by_name("pushed").text == "pushed"
    assert session.document.get_model_by_name("s") is None
    assert session.document.title == "pushed title"

    models = bk.models_by_name(await _pull_after_patches(bk, watcher))
    assert set(models) == {"pushed"}


async def _pull_after_patches(bk, comm) -> dict[str, Any]:
    """Pull, skipping the PATCH-DOCs a push broadcast to this connection before the reply."""
    request = bk.protocol.create("PULL-DOC-REQ")
    reply, before = await bk.request(comm, request)
    assert all(m.msgtype == "PATCH-DOC" for m in before)
    return reply.content["doc"]


async def test_patch_naming_an_unknown_model_gets_error_and_the_socket_stays_open(
    slider_server, open_session, bk, bokeh_warnings
):
    comm = await open_session("/app")
    header = {"msgid": "bad-patch-1", "msgtype": "PATCH-DOC"}
    content = {"events": [{"kind": "ModelChanged", "model": {"id": "no-such-model"}, "attr": "value", "new": 3}]}
    await bk.send_frames(comm, [json.dumps(header), "{}", json.dumps(content)])
    reply = await bk.read_message(comm)
    assert reply.msgtype == "ERROR"
    assert reply.reqid == "bad-patch-1"
    assert "no-such-model" in reply.content["text"]
    # the connection is still usable
    doc = await pull(bk, comm)
    assert bk.models_by_name(doc)["s"]["attributes"]["value"] == 1
    assert_warned_without_traceback(bokeh_warnings)


def button_doc(doc: Document) -> None:
    button = Button(label="press", name="b")
    div = Div(text="clicks=0", name="clicks")
    count = [0]

    def clicked(event: ButtonClick) -> None:
        count[0] += 1
        div.text = f"clicks={count[0]}"

    button.on_event("button_click", clicked)
    doc.add_root(button)
    doc.add_root(div)


async def test_ui_event_runs_the_handler_and_is_not_rebroadcast(web_app, open_session, bk):
    server = web_app({"/button": button_doc})
    token = bk.make_token()
    clicker = await open_session("/button", token)
    other = await open_session("/button", token)
    models = bk.models_by_name(await pull(bk, clicker))
    button_id, div_id = models["b"]["id"], models["clicks"]["id"]

    header = {"msgid": "click-1", "msgtype": "PATCH-DOC"}
    event = {
        "kind": "MessageSent",
        "msg_type": "bokeh_event",
        "msg_data": {
            "type": "event",
            "name": "button_click",
            "values": {"type": "map", "entries": [["model", {"id": button_id}]]},
        },
    }
    await bk.send_frames(clicker, [json.dumps(header), "{}", json.dumps({"events": [event]})])
    before = []
    while (message := await bk.read_message(clicker)).reqid != "click-1":
        before.append(message)
    assert message.msgtype == "OK"
    assert [e["new"] for e in changes(before, div_id)] == ["clicks=1"]

    heard = await bk.read_message(other)
    assert [e["new"] for e in changes([heard], div_id)] == ["clicks=1"]
    assert await other.receive_nothing(timeout=0.1), "the client's MessageSent must not be re-broadcast"
    [session] = server.get_sessions("/button")
    assert session.document.get_model_by_name("clicks").text == "clicks=1"


async def test_session_created_by_the_websocket_sees_the_token_arguments(web_app, open_session, bk):
    from bokeh.plotting import curdoc

    def args_doc(doc: Document) -> None:
        arguments = curdoc().session_context.request.arguments
        doc.add_root(Div(text=json.dumps({k: [v.decode() for v in vs] for k, vs in arguments.items()}), name="args"))

    server = web_app({"/args": args_doc})
    token = bk.make_token(extra_payload={"headers": {}, "cookies": {}, "arguments": {"x": [b"1"]}})
    await open_session("/args", token)
    [session] = server.get_sessions("/args")
    assert json.loads(session.document.get_model_by_name("args").text) == {"x": ["1"]}


@pytest.mark.parametrize(
    "subprotocols",
    [[], ["bokeh"], ["not-bokeh", "token"], ["bokeh", "not-a-token"]],
    ids=["none", "no-token", "wrong-protocol", "garbage-token"],
)
async def test_missing_or_bad_subprotocol_is_closed_4003(slider_server, ws, open_session, bk, bokeh_warnings, subprotocols):
    code, reason = await refused_with(bk, ws("/app", subprotocols=subprotocols))
    assert code == CloseCode.FORBIDDEN == 4003
    assert reason
    assert_warned_without_traceback(bokeh_warnings)
    await assert_still_serves(bk, open_session)
    assert slider_server.get_sessions("/app") != []


async def test_signed_sessions_accept_a_signed_token(web_app, open_session, bk):
    web_app({"/app": bk.slider_doc}, secret_key=SECRET, sign_sessions=True)
    await assert_still_serves(bk, open_session, token=bk.make_token(secret_key=SECRET, signed=True))


@pytest.mark.parametrize("forgery", ["unsigned", "other-key", "tampered"])
async def test_signed_sessions_refuse_a_bad_token_4003(web_app, ws, open_session, bk, bokeh_warnings, forgery):
    web_app({"/app": bk.slider_doc}, secret_key=SECRET, sign_sessions=True)
    if forgery == "unsigned":
        token = bk.make_token()
    elif forgery == "other-key":
        token = bk.make_token(secret_key="y" * 44, signed=True)
    else:
        good = bk.make_token(secret_key=SECRET, signed=True)
        body, signature = good.rsplit(".", 1)
        token = body + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    code, _ = await refused_with(bk, ws("/app", token))
    assert code == CloseCode.FORBIDDEN
    assert_warned_without_traceback(bokeh_warnings, "signature")
    await assert_still_serves(bk, open_session, token=bk.make_token(secret_key=SECRET, signed=True))


async def test_expired_token_is_closed_4003(slider_server, ws, open_session, bk, bokeh_warnings):
    code, _ = await refused_with(bk, ws("/app", bk.make_token(expiration=-10)))
    assert code == CloseCode.FORBIDDEN
    assert_warned_without_traceback(bokeh_warnings, "expired")
    assert slider_server.get_sessions("/app") == []
    await assert_still_serves(bk, open_session)


async def test_expired_token_is_refused_even_for_a_live_session(slider_server, ws, open_session, bk):
    session_id = "live-session"
    await open_session("/app", bk.make_token(session_id))
    code, _ = await refused_with(bk, ws("/app", bk.make_token(session_id, expiration=-10)))
    assert code == CloseCode.FORBIDDEN
    [session] = slider_server.get_sessions("/app")
    assert session.connection_count == 1


async def test_foreign_origin_is_refused_before_accept(slider_server, ws, open_session, bk, bokeh_warnings):
    comm = ws("/app", headers=[(b"origin", b"http://evil.example.com")])
    assert await comm.connect(timeout=bk.TIMEOUT) == (False, 4003)
    assert_warned_without_traceback(bokeh_warnings, "evil.example.com")
    assert slider_server.get_sessions("/app") == []
    await assert_still_serves(bk, open_session, headers=[(b"origin", b"http://localhost:5006")])


async def test_unknown_app_path_is_closed_4004(slider_server, ws, open_session, bk, bokeh_warnings):
    code, _ = await refused_with(bk, ws("/nope"))
    assert code == CloseCode.NOT_FOUND == 4004
    assert_warned_without_traceback(bokeh_warnings)
    await assert_still_serves(bk, open_session)


def half_built_doc(doc: Document) -> None:
    doc.add_root(Div(name="built", text="built before the failure"))
    raise RuntimeError("modify_doc exploded on purpose")


async def test_a_client_of_an_app_whose_modify_doc_raises_pulls_what_was_built(web_app, open_session, bk, caplog):
    server = web_app({"/broken": half_built_doc, "/app": bk.slider_doc})
    comm = await open_session("/broken")
    doc = await pull(bk, comm)
    assert list(bk.models_by_name(doc)) == ["built"]
    assert len(server.get_sessions("/broken")) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    await assert_still_serves(bk, open_session, "/app")


BAD_FRAMES = {
    "non-json-header": ["this is not json", "{}", "{}"],
    "unknown-msgtype": [json.dumps({"msgid": "m1", "msgtype": "NO-SUCH-TYPE"}), "{}", "{}"],
    "text-where-binary-expected": [
        json.dumps({"msgid": "m2", "msgtype": "PATCH-DOC", "num_buffers": 1}),
        "{}",
        json.dumps({"events": []}),
        json.dumps({"id": "0"}),
        "this should have been a binary frame",
    ],
    "binary-where-text-expected": [b"\x00\x01\x02"],
    "malformed-buffer-header": [
        json.dumps({"msgid": "m3", "msgtype": "PATCH-DOC", "num_buffers": 1}),
        "{}",
        json.dumps({"events": []}),
        json.dumps({"not-id": "0"}),
    ],
    "non-json-content": [json.dumps({"msgid": "m5", "msgtype": "PULL-DOC-REQ"}), "{}", "{not json"],
    "header-without-msgtype": [json.dumps({"msgid": "m6"}), "{}", "{}"],
    "client-sends-ack": [json.dumps({"msgid": "m4", "msgtype": "ACK"}), "{}", "{}"],
    # bokeh's ERROR message cannot even be printed without its "text"
    "client-sends-error-without-text": [json.dumps({"msgid": "m7", "msgtype": "ERROR"}), "{}", "{}"],
}


@pytest.mark.parametrize("send", ["send_frames", "send_gathered"])  # frame by frame, or as our daphne hands them over
@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
async def test_protocol_violation_is_closed_4001(slider_server, open_session, bk, bokeh_warnings, case, send):
    comm = await open_session("/app")
    await getattr(bk, send)(comm, BAD_FRAMES[case])
    code, reason = await bk.read_close(comm)
    assert code == CloseCode.PROTOCOL_ERROR == 4001
    assert reason
    assert_warned_without_traceback(bokeh_warnings)
    await assert_still_serves(bk, open_session)


async def test_client_ack_via_protocol_is_closed_4001(slider_server, open_session, bk, bokeh_warnings):
    comm = await open_session("/app")
    await bk.send_message(comm, bk.protocol.create("ACK"))
    code, reason = await bk.read_close(comm)
    assert code == CloseCode.PROTOCOL_ERROR
    assert "not expected on server" in reason
    assert_warned_without_traceback(bokeh_warnings)


async def test_oversize_message_is_closed_4009(web_app, open_session, bk, bokeh_warnings):
    web_app({"/app": bk.slider_doc}, websocket_max_message_size_bytes=1000)
    comm = await open_session("/app")
    await bk.send_frames(comm, ["x" * 2000])
    code, _ = await bk.read_close(comm)
    assert code == CloseCode.MESSAGE_TOO_BIG == 4009
    assert_warned_without_traceback(bokeh_warnings)
    # a message under the limit still works on a new connection
    await assert_still_serves(bk, open_session)


async def test_oversize_message_handed_over_whole_is_closed_4009(web_app, open_session, bk, bokeh_warnings):
    web_app({"/app": bk.slider_doc}, websocket_max_message_size_bytes=1000)
    comm = await open_session("/app")
    await bk.send_gathered(comm, [json.dumps({"msgid": "m1", "msgtype": "PULL-DOC-REQ"}), "{}", json.dumps({"x": "\u00e9" * 480})])
    code, _ = await bk.read_close(comm)
    assert code == CloseCode.MESSAGE_TOO_BIG == 4009
    assert_warned_without_traceback(bokeh_warnings)


async def test_oversize_limit_counts_bytes_not_characters(web_app, open_session, bk):
    web_app({"/app": bk.slider_doc}, websocket_max_message_size_bytes=1000)
    comm = await open_session("/app")
    frame = "\u00e9" * 600  # 600 characters, 1200 bytes on the wire
    assert len(frame.encode("utf-8")) > 1000
    await bk.send_frames(comm, [frame])
    code, _ = await bk.read_close(comm)
    assert code == CloseCode.MESSAGE_TOO_BIG


async def test_frames_after_a_close_are_ignored(slider_server, open_session, bk):
    comm = await open_session("/app")
    await bk.send_frames(comm, [b"\x00"])
    code, _ = await bk.read_close(comm)
    assert code == CloseCode.PROTOCOL_ERROR
    await bk.send_message(comm, bk.protocol.create("PULL-DOC-REQ"))
    assert await comm.receive_nothing(timeout=0.1)


async def test_the_root_app_has_its_websocket_at_slash_ws(web_app, open_session, bk):
    web_app({"/": bk.slider_doc})
    comm = await open_session("/", bk.make_token())
    from bokeh.protocol import Protocol

    reply, _ = await bk.request(comm, Protocol().create("PULL-DOC-REQ"))
    assert reply.header["msgtype"] == "PULL-DOC-REPLY"


async def test_session_sockets_take_no_channel_layer_channel(slider_server, open_session, bk):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    assert layer is not None  # the project configures one (admin actions use it)
    comm = await open_session("/app")
    assert (await pull(bk, comm))["roots"]
    assert getattr(layer, "channels", {}) == {}
    await comm.disconnect()


DEEP = "[" * 100_000 + "]" * 100_000
ESCAPING_FRAMES = {
    # json.loads raises RecursionError, which bokeh's decoding does not catch
    "deeply-nested-content": [json.dumps({"msgid": "d1", "msgtype": "PULL-DOC-REQ"}), "{}", DEEP],
    "deeply-nested-header": [DEEP, "{}", "{}"],
    "deeply-nested-buffer-header": [
        json.dumps({"msgid": "d2", "msgtype": "PATCH-DOC", "num_buffers": 1}), "{}", json.dumps({"events": []}), DEEP,
    ],
    # int() refuses more than 4300 digits with a plain ValueError
    "huge-number-in-header": ['{"msgid": "n1", "msgtype": "PULL-DOC-REQ", "num_buffers": ' + "9" * 5000 + "}", "{}", "{}"],
    "huge-number-in-buffer-header": [
        json.dumps({"msgid": "n2", "msgtype": "PATCH-DOC", "num_buffers": 1}), "{}", json.dumps({"events": []}),
        '{"id": ' + "9" * 5000 + "}",
    ],
}


@pytest.mark.parametrize("case", sorted(ESCAPING_FRAMES))
async def test_input_that_breaks_json_decoding_is_closed_4001_and_the_session_detached(
    slider_server, open_session, bk, bokeh_warnings, case,
):
    comm = await open_session("/app")
    [session] = slider_server.get_sessions("/app")
    assert session.connection_count == 1
    await bk.send_frames(comm, ESCAPING_FRAMES[case])
    code, reason = await bk.read_close(comm)
    assert code == CloseCode.PROTOCOL_ERROR
    assert reason.startswith("malformed message")
    assert session.connection_count == 0, "the session should be left to expire by the usual rules"
    assert_warned_without_traceback(bokeh_warnings)
    await assert_still_serves(bk, open_session)


async def test_a_header_without_msgid_is_a_protocol_error(slider_server, open_session, bk, caplog):
    comm = await open_session("/app")
    await bk.send_frames(comm, [json.dumps({"msgtype": "PULL-DOC-REQ"}), "{}", "{}"])
    code, reason = await bk.read_close(comm)
    assert code == CloseCode.PROTOCOL_ERROR
    assert "msgid" in reason
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_consumer_that_is_cancelled_leaves_its_session_detached(slider_server, open_session, bk):
    lost = []
    comm = await open_session("/app")
    [session] = slider_server.get_sessions("/app")
    session.document.on_event("connection_lost", lambda event: lost.append(event))
    assert session.connection_count == 1
    comm.future.cancel()  # as daphne cancels an application that outlives its socket
    await eventually(lambda: session.connection_count == 0, what="the session has no connection")
    await eventually(lambda: lost, what="connection_lost handlers ran")
    await assert_still_serves(bk, open_session)


async def test_an_unexpected_error_in_a_handler_closes_4000_detached_without_traceback(
    slider_server, open_session, bk, bokeh_warnings, monkeypatch,
):
    comm = await open_session("/app")
    [session] = slider_server.get_sessions("/app")

    async def broken(message, connection):
        raise RecursionError("handler blew its stack")

    monkeypatch.setattr("bokehserver.protocol_handler.ProtocolHandler.handle", lambda self, m, c: broken(m, c))
    await bk.send_message(comm, bk.protocol.create("PULL-DOC-REQ"))
    code, reason = await bk.read_close(comm)
    assert code == CloseCode.INTERNAL_ERROR
    assert reason == "server failed to handle PULL-DOC-REQ"  # what failed inside stays in the log
    assert session.connection_count == 0
    assert_warned_without_traceback(bokeh_warnings, "handler blew its stack")


async def test_buffers_of_a_message_in_progress_count_against_the_size_limit(web_app, open_session, bk, bokeh_warnings):
    web_app({"/app": bk.slider_doc}, websocket_max_message_size_bytes=10_000)
    comm = await open_session("/app")
    header = json.dumps({"msgid": "b1", "msgtype": "PATCH-DOC", "num_buffers": 10**9})
    await bk.send_frames(comm, [header, "{}", json.dumps({"events": []})])
    for index in range(20):  # each frame is far under the limit; together they pass it
        await bk.send_frames(comm, [json.dumps({"id": str(index)}), b"\0" * 1000])
    code, reason = await bk.read_close(comm)
    assert code == CloseCode.MESSAGE_TOO_BIG
    assert "max message size" in reason
    assert_warned_without_traceback(bokeh_warnings)


async def test_the_size_limit_applies_per_message_not_per_connection(web_app, open_session, bk):
    web_app({"/app": bk.slider_doc}, websocket_max_message_size_bytes=3_000)
    comm = await open_session("/app")
    for _ in range(20):  # 20 messages, together far over the limit
        reply, _ = await bk.request(comm, bk.protocol.create("SERVER-INFO-REQ"))
        assert reply.msgtype == "SERVER-INFO-REPLY"


HUGE_NUMBER_HEADER = '{"msgid": "x", "msgtype": "PULL-DOC-REQ", "num_buffers": ' + "9" * 4400 + "}"


def _frames_strategy():
    """Frames a hostile client might send: headers of every shape, any JSON, deep nesting, bytes."""
    from hypothesis import strategies as st

    msgtypes = st.sampled_from(["PULL-DOC-REQ", "PUSH-DOC", "PATCH-DOC", "SERVER-INFO-REQ", "ACK", "OK", "NOPE"])
    numbers = st.one_of(st.integers(-3, 3), st.integers(), st.floats(allow_nan=True))
    json_values = st.recursive(
        st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20)),
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
        max_leaves=12,
    )
    headers = st.fixed_dictionaries(
        {},
        optional={"msgid": st.one_of(st.text(max_size=8), numbers), "msgtype": st.one_of(msgtypes, json_values),
                  "num_buffers": numbers, "reqid": st.text(max_size=8)},
    ).map(json.dumps)
    nested = st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)
    texts = st.one_of(
        headers, json_values.map(json.dumps), nested, st.text(max_size=40), st.just(HUGE_NUMBER_HEADER),
        st.just('{"events": [{"kind": "ModelChanged", "model": {"id": "nope"}, "attr": "x", "new": 1}]}'),
        st.just(json.dumps({"id": "0"})),
    )
    return st.lists(st.one_of(texts, st.binary(max_size=64)), min_size=1, max_size=12)


async def test_fuzzed_frames_never_escape_the_consumer_nor_leak_a_session(slider_server, open_session, bk):
    """Whatever frames a client sends: a 4xxx close or nothing, and no connection left attached."""
    from hypothesis import HealthCheck, given, settings

    # hypothesis draws the examples; each then runs on this test's event loop (no shrinking: a
    # failure names its frames)
    examples: list[list[str | bytes]] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(frames=_frames_strategy())
    def collect(frames):
        examples.append(frames)

    collect()
    for frames in examples:
        token = bk.make_token()
        comm = await open_session("/app", token)
        session = next(s for s in slider_server.get_sessions("/app") if s.id == get_session_id(token))
        await bk.send_frames(comm, frames)
        while not await comm.receive_nothing(timeout=0.05):
            output = await comm.receive_output()
            if output["type"] == "websocket.close":
                assert 4000 <= output["code"] < 5000, (output, frames)
                break
        await comm.disconnect(timeout=bk.TIMEOUT)  # re-raises anything that escaped the consumer
        assert session.connection_count == 0, frames


async def test_connections_past_the_per_session_limit_are_closed_4029(slider_server, open_session, ws, bk, settings):
    settings.BOKEHSERVER = {"MAX_CONNECTIONS_PER_SESSION": 2}
    token = bk.make_token()
    await open_session("/app", token)
    await open_session("/app", token)
    third = ws("/app", token)
    code, reason = await refused_with(bk, third)
    assert code == CloseCode.LIMIT_REACHED == 4029
    assert "MAX_CONNECTIONS_PER_SESSION" in reason
    [session] = slider_server.get_sessions("/app")
    assert session.connection_count == 2


async def test_sessions_past_the_per_app_limit_are_refused_4029(slider_server, open_session, ws, bk, settings):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_APP": 2}
    await open_session("/app")
    await open_session("/app")
    code, reason = await refused_with(bk, ws("/app"))
    assert code == CloseCode.LIMIT_REACHED
    assert "MAX_SESSIONS_PER_APP" in reason
    assert len(slider_server.get_sessions("/app")) == 2
    await assert_still_serves(bk, open_session, "/other")


async def test_a_patch_or_push_past_the_document_model_limit_gets_error(slider_server, open_session, bk, settings):
    from bokeh.models import Div as NewDiv

    comm = await open_session("/app")
    doc = await pull(bk, comm)
    [session] = slider_server.get_sessions("/app")
    settings.BOKEHSERVER = {"MAX_DOCUMENT_MODELS": len(session.document.models) + 2}
    grow = bk.client_patch(doc, lambda d: [d.add_root(NewDiv(text=str(i))) for i in range(3)])
    reply, _ = await bk.request(comm, grow)
    assert reply.msgtype == "ERROR"
    assert "MAX_DOCUMENT_MODELS" in reply.content["text"]
    assert len(session.document.roots) == 2  # nothing of the refused patch was applied

    big = Document()
    for i in range(len(session.document.models) + 3):
        big.add_root(NewDiv(text=str(i)))
    reply, _ = await bk.request(comm, bk.protocol.create("PUSH-DOC", big))
    assert reply.msgtype == "ERROR"
    assert "MAX_DOCUMENT_MODELS" in reply.content["text"]

    within = bk.client_patch(doc, lambda d: d.add_root(NewDiv(text="one more")))
    reply, _ = await bk.request(comm, within)
    assert reply.msgtype == "OK"


@pytest.mark.parametrize("whole_messages", [True, False])
async def test_several_messages_go_out_in_one_event_where_the_server_takes_whole_messages(whole_messages):
    from bokehserver.consumers import SessionConsumer
    from bokehserver.frames import SEND_FRAMES

    events: list[dict[str, Any]] = []

    async def send(event):
        events.append(event)

    consumer = SessionConsumer()
    consumer.scope = {"extensions": {SEND_FRAMES: {}} if whole_messages else {}}
    consumer.base_send = send
    await consumer.send_messages([("h1", "m1", "c1"), ("h2", "m2", "c2", "ref", b"\x00")])
    if whole_messages:
        assert events == [{"type": SEND_FRAMES, "frames": ("h1", "m1", "c1", "h2", "m2", "c2", "ref", b"\x00")}]
    else:
        assert [event.get("text", event.get("bytes")) for event in events] == ["h1", "m1", "c1", "h2", "m2", "c2", "ref", b"\x00"]
        assert [event["type"] for event in events] == ["websocket.send"] * 8
