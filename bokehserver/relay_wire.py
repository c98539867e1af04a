"""How relayed messages travel between processes: a Redis list per process, or the channel layer itself.

channels-redis spends eight Redis round trips on each message between processes (capacity
check, expiry, in-flight backup on both ends), several milliseconds per hop on a busy machine.
A relayed websocket sends each Bokeh message over one hop, so on channels-redis the relay
speaks to the same Redis directly: one pipelined RPUSH + EXPIRE to send, one BLPOP to receive,
messages packed with msgpack (as channels-redis packs them). Any other shared layer is used
through the channel layer API.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ("LayerWire", "RedisListWire", "WireFull", "wire_for")

# several messages sent at once over a channel layer travel as one of these
BATCH = "bokehserver.relay.batch"

KEY_PREFIX = "bokehserver-relay:"
# seconds a message waits for a receiver that stopped reading (a process gone) before Redis drops it
EXPIRY_SECONDS = 60
# messages waiting for one process past which a sender gives up on it
CAPACITY = 10_000
BLOCK_SECONDS = 5


class WireFull(Exception):
    """The receiving process has not read its messages for a long while (gone or stuck)."""


class LayerWire:
    """Relay messages over any channel layer: its channels, ``send`` and ``receive``."""

    def __init__(self, layer: Any) -> None:
        self._layer = layer

    async def new_channel(self) -> str:
        return await self._layer.new_channel()

    def owns(self, channel: str) -> bool:
        return "!" in channel and len(channel) <= 100

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self._layer.send(channel, message)

    async def send_batch(self, channel: str, messages: list[dict[str, Any]]) -> None:
        await self._layer.send(channel, messages[0] if len(messages) == 1 else {"type": BATCH, "messages": messages})

    async def receive(self, channel: str) -> list[dict[str, Any]]:
        """The next messages sent to ``channel`` (a batch sent at once, or one)."""
        message = await self._layer.receive(channel)
        return list(message["messages"]) if message.get("type") == BATCH else [message]


class RedisListWire:
    """Relay messages over the first Redis host of a channels-redis layer, one list per process."""

    def __init__(self, client: Any) -> None:
        import msgpack

        self._client = client
        self._pack = msgpack.packb
        self._unpack = msgpack.unpackb

    @classmethod
    def from_host(cls, host: Any) -> RedisListWire:
        import redis.asyncio as redis

        if isinstance(host, str):
            return cls(redis.from_url(host))
        if isinstance(host, dict):
            options = dict(host)
            address = options.pop("address", None)
            return cls(redis.from_url(address, **options) if address else redis.Redis(**options))
        host_name, port = host
        return cls(redis.Redis(host=host_name, port=port))

    async def new_channel(self) -> str:
        return KEY_PREFIX + uuid.uuid4().hex

    def owns(self, channel: str) -> bool:
        return channel.startswith(KEY_PREFIX) and len(channel) == len(KEY_PREFIX) + 32

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self.send_batch(channel, [message])

    async def send_batch(self, channel: str, messages: list[dict[str, Any]]) -> None:
        """Send ``messages`` in order, as one list item: one round trip, one pop for the receiver."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.rpush(channel, self._pack(messages, use_bin_type=True))
            pipe.expire(channel, EXPIRY_SECONDS)
            length, _ = await pipe.execute()
        if length > CAPACITY:
            raise WireFull(f"{length} relayed messages wait for {channel}")

    async def receive(self, channel: str) -> list[dict[str, Any]]:
        """The next messages sent to ``channel`` (what one ``send_batch`` sent)."""
        while True:
            item = await self._client.blpop([channel], timeout=BLOCK_SECONDS)
            if item is not None:
                return self._unpack(item[1], raw=False)


def wire_for(layer: Any) -> LayerWire | RedisListWire:
    """The fastest way the relay has to carry messages between the processes sharing ``layer``."""
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:
        return LayerWire(layer)
    hosts = getattr(layer, "hosts", None)
    if type(layer) is RedisChannelLayer and hosts:
        return RedisListWire.from_host(hosts[0])
    return LayerWire(layer)
