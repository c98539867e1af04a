"""The relay's Redis lists: messages arrive whole and in order, text stays text and bytes stay bytes."""
from __future__ import annotations

import pytest

from bokehserver import relay_wire
from bokehserver.relay_wire import RedisListWire, WireFull

pytestmark = pytest.mark.redis


@pytest.fixture
async def wire(redis_url):
    wire = RedisListWire.from_host({"address": redis_url, "socket_timeout": 30})
    yield wire
    await getattr(wire._client, "aclose", None)() if hasattr(wire._client, "aclose") else await wire._client.close()


async def test_messages_arrive_in_order_with_text_and_bytes_kept_apart(wire):
    channel = await wire.new_channel()
    assert wire.owns(channel) and not wire.owns("specific.abc!def") and not wire.owns(relay_wire.KEY_PREFIX + "x")
    for number in range(20):
        await wire.send(channel, {"type": "t", "n": number, "frames": ['{"msgtype": "PATCH-DOC"}', b"\x00\x01"]})
    received = [message for _ in range(20) for message in await wire.receive(channel)]
    assert [m["n"] for m in received] == list(range(20))
    assert received[0]["frames"] == ['{"msgtype": "PATCH-DOC"}', b"\x00\x01"]
    await wire.send_batch(channel, [{"type": "a"}, {"type": "b"}])
    assert [m["type"] for m in await wire.receive(channel)] == ["a", "b"]


async def test_a_receiver_that_stopped_reading_is_reported_full(wire, monkeypatch):
    monkeypatch.setattr(relay_wire, "CAPACITY", 3)
    channel = await wire.new_channel()
    for _ in range(3):
        await wire.send(channel, {"type": "t"})
    with pytest.raises(WireFull, match="4 relayed messages wait"):
        await wire.send(channel, {"type": "t"})
    await wire._client.delete(channel)
