"""A small asyncio Bokeh session client for benchmarks: page GET, websocket, ACK, requests, patches.

It speaks the same wire protocol as BokehJS, without a browser, so many sessions fit in one
process and every reply can be checked.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import gzip
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import websockets

TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')
_counter = 0


def _msgid() -> str:
    global _counter
    _counter += 1
    return f"bench{_counter}"


async def http_get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """GET ``url`` over a fresh HTTP/1.1 connection; return (status, body)."""
    parsed = urlparse(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(parsed.hostname, parsed.port or 80), timeout)
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return bytes(out)


@dataclass
class Message:
    header: dict[str, Any]
    metadata: dict[str, Any]
    content: dict[str, Any]
    buffers: list[bytes] = field(default_factory=list)
    received_at: float = 0.0
    buffer_ids: list[str] = field(default_factory=list)
    arrived_at: float = 0.0
    """When the socket delivered the message's last frame (before any task ran); else ``received_at``."""

    @property
    def msgtype(self) -> str:
        return self.header["msgtype"]

    @property
    def buffer_map(self) -> dict[str, bytes]:
        """Buffer id -> bytes, for resolving ``{"type": "bytes", "data": {"id": ...}}`` references."""
        return dict(zip(self.buffer_ids, self.buffers))


class BokehSession:
    """One websocket session of an app; ``open()`` gets the page, connects and waits for ACK."""

    def __init__(self, base_url: str, app_path: str, track_arrivals: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_path = app_path
        self.track_arrivals = track_arrivals  # off where only round trips count: a call per frame saved
        self.token: str | None = None
        self.ws: Any = None
        self._arrivals: collections.deque[float] = collections.deque()

    async def get_page(self) -> str:
        status, body = await http_get(f"{self.base_url}{self.app_path}")
        if status != 200:
            raise RuntimeError(f"page GET {self.app_path} answered {status}")
        match = TOKEN_RE.search(body.decode())
        if not match:
            raise RuntimeError("no session token in the page")
        self.token = match.group(1)
        return self.token

    async def connect(self) -> Message:
        ws_url = self.base_url.replace("http://", "ws://") + self.app_path + "/ws"
        self.ws = await websockets.connect(
            ws_url, subprotocols=["bokeh", self.token], max_size=64 * 1024 * 1024, compression=None,
            ping_interval=None, open_timeout=30,
        )
        if self.track_arrivals:
            self._track_arrivals()
        ack = await self.recv()
        if ack.msgtype != "ACK":
            raise RuntimeError(f"first message was {ack.msgtype}, not ACK")
        return ack

    def _track_arrivals(self) -> None:
        """Time-stamp each websocket message as the connection parses it off the socket.

        Many sockets read by one client process queue up behind each other in the tasks that
        consume them; this time is taken in the socket's read callback instead, so it says when
        the server's bytes arrived. Left out (``arrived_at`` = ``received_at``) where the websockets
        implementation has no frame assembler to hook.
        """
        self._arrivals.clear()
        assembler = getattr(self.ws, "recv_messages", None)
        put = getattr(assembler, "put", None)
        if put is None:
            return
        arrivals = self._arrivals

        def timed_put(frame: Any) -> None:
            if getattr(frame, "fin", True):
                arrivals.append(time.perf_counter())
            put(frame)

        assembler.put = timed_put

    def _arrival(self, frames: int) -> float:
        stamp = 0.0
        for _ in range(min(frames, len(self._arrivals))):
            stamp = self._arrivals.popleft()
        return stamp

    async def open(self, pause: float = 0.0) -> None:
        await self.get_page()
        if pause:
            await asyncio.sleep(pause)
        await self.connect()

    async def recv(self) -> Message:
        header = json.loads(await self.ws.recv())
        metadata = json.loads(await self.ws.recv())
        content = json.loads(await self.ws.recv())
        buffers = []
        buffer_ids = []
        for _ in range(header.get("num_buffers", 0)):
            buffer_ids.append(json.loads(await self.ws.recv())["id"])
            buffers.append(await self.ws.recv())
        received_at = time.perf_counter()
        arrived_at = self._arrival(3 + 2 * len(buffers)) or received_at
        return Message(header, metadata, content, buffers, received_at, buffer_ids, arrived_at)

    async def send(self, msgtype: str, content: dict[str, Any]) -> str:
        msgid = _msgid()
        await self.ws.send(json.dumps({"msgid": msgid, "msgtype": msgtype}))
        await self.ws.send("{}")
        await self.ws.send(json.dumps(content))
        return msgid

    async def request(self, msgtype: str, content: dict[str, Any], *, collect: list[Message] | None = None) -> Message:
        """Send and wait for the reply with our msgid; other messages go to ``collect``."""
        msgid = await self.send(msgtype, content)
        while True:
            message = await self.recv()
            if message.header.get("reqid") == msgid:
                return message
            if collect is not None:
                collect.append(message)

    async def pull(self) -> Message:
        reply = await self.request("PULL-DOC-REQ", {})
        if reply.msgtype != "PULL-DOC-REPLY" or "doc" not in reply.content:
            raise RuntimeError(f"bad PULL-DOC reply: {reply.msgtype}")
        return reply

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every serialized model object (``{"type": "object", ...}``) anywhere in a pulled document."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def model_by_name(doc_json: dict[str, Any], name: str) -> dict[str, Any]:
    """Find a serialized model by its ``name`` anywhere in a pulled document."""
    for node in _objects(doc_json):
        if node.get("attributes", {}).get("name") == name:
            return node
    raise KeyError(name)


def decode_array(value: Any, buffers: dict[str, bytes]) -> Any:
    """A column as Bokeh serializes it (list, ndarray with inline or buffer bytes) -> numpy array."""
    import numpy as np

    if isinstance(value, list):
        return np.asarray(value)
    if isinstance(value, dict) and value.get("type") == "ndarray":
        array = value["array"]
        if isinstance(array, list):
            return np.asarray(array, dtype=value.get("dtype"))
        if isinstance(array, dict) and array.get("type") == "bytes":
            data = array["data"]
            raw = buffers[data["id"]] if isinstance(data, dict) else base64.b64decode(data)
            if raw[:2] == b"\x1f\x8b":  # gzip's magic: bokeh 3.8 on compresses inline bytes
                with contextlib.suppress(OSError, EOFError):
                    raw = gzip.decompress(raw)
            dtype = np.dtype(value["dtype"]).newbyteorder("<" if value.get("order", "little") == "little" else ">")
            return np.frombuffer(raw, dtype=dtype).reshape(value.get("shape", [-1]))
    raise ValueError(f"not a serialized column: {str(value)[:80]}")


def map_entries(value: Any) -> dict[str, Any]:
    """A serialized ``{"type": "map", "entries": [[k, v], ...]}`` (or a plain dict) as a dict."""
    if isinstance(value, dict) and value.get("type") == "map":
        return {k: v for k, v in value.get("entries", [])}
    if isinstance(value, dict):
        return value
    raise ValueError(f"not a serialized map: {str(value)[:80]}")


def count_models(doc_json: dict[str, Any]) -> int:
    """How many distinct models a pulled document defines (each is serialized in full once)."""
    return len({node["id"] for node in _objects(doc_json) if "id" in node})


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def trip_summary(trips: list[float]) -> dict[str, float]:
    """Round trips (seconds) as their count, p50, p99 and worst, in milliseconds."""
    return {"round_trips": len(trips), "p50_ms": round(percentile(trips, 50) * 1000, 1),
            "p99_ms": round(percentile(trips, 99) * 1000, 1), "max_ms": round(max(trips) * 1000, 1)}
