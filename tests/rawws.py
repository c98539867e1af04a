"""A websocket client on a bare socket, for clients that misbehave: never read, read slowly, see the raw close."""
from __future__ import annotations

import base64
import json
import os
import socket
import struct

from bokeh.protocol import Protocol
from bokeh.util.token import generate_jwt_token, generate_session_id

from bokehserver.frames import message_frames


def bokeh_token(session_id: str | None = None) -> str:
    """An unsigned token for a new (or the given) session id, as the demo site accepts."""
    return generate_jwt_token(session_id or generate_session_id(signed=False), signed=False)


def connect(port: int, path: str, token: str, *, rcvbuf: int | None = None, timeout: float = 30.0) -> socket.socket:
    """Open ``path`` on 127.0.0.1:port with the bokeh subprotocol; return the socket after the 101."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: bokeh, {token}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"the server closed the handshake: {head!r}")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {head!r}")
    return sock


def frame_bytes(payload: str | bytes, *, opcode: int | None = None) -> bytes:
    """One masked, final client frame (text for str, binary for bytes, or ``opcode``)."""
    data = payload.encode() if isinstance(payload, str) else payload
    opcode = opcode if opcode is not None else (0x1 if isinstance(payload, str) else 0x2)
    mask = os.urandom(4)
    size = len(data)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 0x10000:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def message_bytes(msgtype: str, *args: object) -> bytes:
    """A whole Bokeh message (``Protocol().create(msgtype, *args)``) as client frames."""
    return b"".join(frame_bytes(frame) for frame in message_frames(Protocol().create(msgtype, *args)))


def _exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection without a close frame")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read one (unmasked, server) frame: (opcode, payload)."""
    first, second = _exactly(sock, 2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", _exactly(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", _exactly(sock, 8))[0]
    return first & 0x0F, _exactly(sock, size)


def read_close(sock: socket.socket) -> tuple[int, str]:
    """Skip frames until the server's close frame; return its (code, reason)."""
    while True:
        opcode, payload = read_frame(sock)
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            return code, payload[2:].decode("utf-8", "replace")


def read_json_frame(sock: socket.socket) -> dict:
    opcode, payload = read_frame(sock)
    assert opcode == 0x1, (opcode, payload[:80])
    return json.loads(payload)
