"""The relay's decisions, without Redis: what a holding process sends, and what an owner answers."""
from __future__ import annotations

import json
from typing import Any

import pytest
from bokeh.models import Div
from bokeh.protocol.exceptions import ProtocolError

from bokehserver import relay as relay_module
from bokehserver.relay import OWNER_KEY, Relay, RelayedSocket, RelayRefused
from bokehserver.relay_wire import LayerWire

from waiting import eventually


class Wire(LayerWire):
    """Records what is sent; channels look like a channel layer's process channels."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def new_channel(self) -> str:
        return "specific.here!relay"

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        self.sent.append((channel, message))

    async def send_batch(self, channel: str, messages: list[dict[str, Any]]) -> None:
        self.sent.extend((channel, message) for message in messages)


def doc_with_div(doc):
    doc.add_root(Div(name="d", text="x"))


@pytest.fixture
def relay(web_app) -> Relay:
    app = web_app({"/app": doc_with_div})
    relay = app.relay
    relay._wire = Wire()
    relay._channel = "specific.here!relay"
    return relay


def header(num_buffers: int = 0) -> str:
    return json.dumps({"msgid": "1", "msgtype": "PATCH-DOC", "num_buffers": num_buffers})


async def test_a_whole_message_is_sent_once_its_buffers_are_in(relay):
    relayed = RelayedSocket(relay, consumer=None, conn="c1", owner="specific.owner!x")
    frames = [header(1), "{}", '{"events": []}', '{"id": "b"}', b"\x00\x01"]
    done = [await relayed.consume(frame) for frame in frames]
    assert done == [False, False, False, False, True]
    assert relay._wire.sent == [("specific.owner!x", {"type": relay_module.MESSAGE, "conn": "c1", "frames": frames})]


async def test_a_message_not_starting_with_a_header_is_a_protocol_error(relay):
    relayed = RelayedSocket(relay, consumer=None, conn="c1", owner="specific.owner!x")
    with pytest.raises(ProtocolError, match="does not start with a Bokeh header"):
        await relayed.consume("not json")
    assert relay._wire.sent == []


async def test_a_message_over_the_relay_limit_is_refused_with_4009(relay, settings):
    settings.BOKEHSERVER = {"RELAY_MAX_MESSAGE_SIZE": 100}
    relayed = RelayedSocket(relay, consumer=None, conn="c1", owner="specific.owner!x")
    await relayed.consume(header())
    with pytest.raises(RelayRefused) as refused:
        await relayed.consume("x" * 200)
    assert refused.value.code == 4009 and "RELAY_MAX_MESSAGE_SIZE" in refused.value.reason


def test_only_another_process_channel_is_taken_as_owner(relay, bk):
    def owner(value: Any) -> str | None:
        return relay.owner_of(bk.make_token(extra_payload={OWNER_KEY: value}))

    assert owner("specific.there!abc") == "specific.there!abc"
    assert owner("specific.here!relay") is None  # this process
    assert owner("bokehserver.control") is None  # a group, not a process's channel
    assert owner(42) is None
    assert relay.owner_of(bk.make_token()) is None
    assert relay.owner_of("not a token") is None


async def open_request(relay: Relay, session_id: str) -> dict[str, Any]:
    await relay._open({"type": relay_module.OPEN, "conn": "c9", "reply_to": "specific.there!r",
                       "app_path": "/app", "session_id": session_id})
    return await eventually(lambda: relay._wire.sent and relay._wire.sent[0][1])


async def test_an_owner_without_the_session_says_missing(relay):
    assert (await open_request(relay, "never-built"))["type"] == relay_module.MISSING


async def test_an_owner_refuses_a_session_that_was_ended(relay):
    context = relay._web_app.context_for("/app")
    session = await context.create_session_if_needed("s1")
    await context.end_session(session, "ended by an administrator")
    answer = await open_request(relay, "s1")
    assert answer["type"] == relay_module.REFUSED and answer["code"] == 4010
    assert "ended by an administrator" in answer["reason"]


async def test_an_owner_refuses_a_socket_past_the_connection_limit(relay, settings):
    settings.BOKEHSERVER = {"MAX_CONNECTIONS_PER_SESSION": 0}
    await relay._web_app.context_for("/app").create_session_if_needed("s2")
    answer = await open_request(relay, "s2")
    assert answer["type"] == relay_module.REFUSED and answer["code"] == 4029


async def test_an_owner_serves_the_socket_through_a_proxy_connection(relay):
    session = await relay._web_app.context_for("/app").create_session_if_needed("s3")
    await open_request(relay, "s3")
    await eventually(lambda: len(relay._wire.sent) >= 2)
    (_, opened), (_, ack) = relay._wire.sent[:2]
    assert opened["type"] == relay_module.OPENED
    assert json.loads(ack["frames"][0])["msgtype"] == "ACK"
    assert session.connection_count == 1 and relay.proxies == 1
    await relay._dispatch({"type": relay_module.CLOSED, "conn": "c9"})
    await eventually(lambda: session.connection_count == 0 and relay.proxies == 0)


async def test_relayed_messages_count_in_the_owners_session_traffic(relay):
    session = await relay._web_app.context_for("/app").create_session_if_needed("s4")
    await open_request(relay, "s4")
    await eventually(lambda: len(relay._wire.sent) >= 2)  # OPENED, ACK
    frames = [json.dumps({"msgid": "7", "msgtype": "PULL-DOC-REQ"}), "{}", "{}"]
    await relay._dispatch({"type": relay_module.MESSAGE, "conn": "c9", "frames": frames})
    await eventually(lambda: session.traffic.messages_in == 1)
    assert session.traffic.bytes_in == sum(len(frame) for frame in frames)
    await eventually(lambda: session.traffic.messages_out >= 2)  # the ACK and the PULL-DOC-REPLY
    await relay._dispatch({"type": relay_module.CLOSED, "conn": "c9"})
    await eventually(lambda: relay.proxies == 0)


async def test_an_answer_that_comes_after_the_wait_releases_the_owners_proxy(relay):
    await relay._dispatch({"type": relay_module.OPENED, "conn": "late", "owner": "specific.owner!x"})
    await eventually(lambda: relay._wire.sent)
    assert relay._wire.sent == [("specific.owner!x", {"type": relay_module.CLOSED, "conn": "late"})]


async def test_a_socket_that_closed_while_its_owner_answered_gets_no_proxy(relay):
    session = await relay._web_app.context_for("/app").create_session_if_needed("s4")
    wire = relay._wire
    original = wire.send

    async def send_then_close(channel, message):
        await original(channel, message)
        if message["type"] == relay_module.OPENED:  # the holder's CLOSED arrives before the owner resumes
            await relay._dispatch({"type": relay_module.CLOSED, "conn": message["conn"]})

    wire.send = send_then_close
    await open_request(relay, "s4")
    assert [m["type"] for _, m in wire.sent] == [relay_module.OPENED]
    assert session.connection_count == 0 and relay.proxies == 0
