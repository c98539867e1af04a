"""Handing a websocket to the sibling worker process that owns its session, instead of relaying it.

With ``--num-procs N`` the workers share one listening socket and the kernel picks which one
accepts each connection, so a page and its websocket land on different workers about half the
time. Each worker of such a group listens on a Unix datagram socket of its own (in the abstract
namespace, named in the tokens of the sessions it builds). A worker that accepts a websocket
for a sibling's session sends the connection itself there before answering its handshake: the
socket's descriptor (``SCM_RIGHTS``) with the request bytes read so far. The sibling's daphne
serves it as if it had accepted it, so the session's messages cross no process boundary. What
cannot be handed over (TLS, a sibling gone or too busy to read, a process of another group or
host) is relayed as before.
"""
from __future__ import annotations

import array
import asyncio
import logging
import os
import socket
import struct
import uuid
from collections.abc import Callable
from typing import Any

from ._compat.handoff import connection_fileno, release_connection, takeable_connection

logger = logging.getLogger(__name__)

__all__ = ("HANDOFF_KEY", "Handoffs")

HANDOFF_KEY = "bokehserver_handoff"
NAME_PREFIX = "bokehserver-handoff/"
# the handshake request of a websocket, cookies included; a larger one is relayed instead
MAX_REQUEST_BYTES = 64 * 1024
_FD_SIZE = array.array("i").itemsize
_CREDENTIALS = struct.Struct("3i")  # pid, uid, gid
_ANCILLARY_BYTES = socket.CMSG_SPACE(4 * _FD_SIZE) + socket.CMSG_SPACE(_CREDENTIALS.size)


class Handoffs:
    """One worker's end: the socket siblings hand connections to, and the sending of its own."""

    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._sender: socket.socket | None = None
        self._name: str | None = None
        self._group: str | None = None
        self._adopt: Callable[[int, bytes], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.handed = 0
        self.adopted = 0

    @property
    def name(self) -> str | None:
        """This worker's handoff address (None when it takes no connections), for its tokens."""
        return self._name

    def serve(self, group: str | None, adopt: Callable[[int, bytes], None]) -> None:
        """Take connections from the workers of ``group`` (nothing without a group), giving each to ``adopt``.

        ``adopt(fd, request)`` owns ``fd``. Call on the running loop; Linux only (abstract Unix sockets).
        """
        if group is None or self._listener is not None or not hasattr(socket, "SO_PASSCRED"):
            return
        name = f"{NAME_PREFIX}{group}/{uuid.uuid4().hex}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            listener.bind("\0" + name)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            logger.warning("Websockets reaching a sibling process will be relayed: cannot listen for handoffs (%s)", exc)
            return
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(listener.fileno(), self._receive)
        self._listener, self._name, self._group, self._adopt = listener, name, group, adopt

    def stop(self) -> None:
        """Take no more connections (a sibling then relays them)."""
        listener, self._listener, self._name = self._listener, None, None
        if listener is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(listener.fileno())
            listener.close()
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def is_sibling(self, name: Any) -> bool:
        """Whether ``name`` (from a token) is another worker of this group."""
        return (self._group is not None and isinstance(name, str) and name != self._name
                and name.startswith(f"{NAME_PREFIX}{self._group}/") and len(name) < 100)

    def hand_off(self, name: str, send: Any) -> bool:
        """Give the websocket behind ``send`` to the sibling at ``name``; True once it is theirs.

        False leaves the socket untouched here: not a socket that can be handed over, or the
        sibling did not take it (gone, or its queue full).
        """
        if not self.is_sibling(name):
            return False
        taken = takeable_connection(send)
        if taken is None:
            return False
        protocol, request = taken
        if len(request) > MAX_REQUEST_BYTES:
            return False
        if not send_connection(self._sending_socket(), name, connection_fileno(protocol), request):
            return False
        release_connection(protocol)
        self.handed += 1
        logger.debug("Handed a websocket over to the sibling process that built its session")
        return True

    def _sending_socket(self) -> socket.socket:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        return self._sender

    def _receive(self) -> None:
        assert self._listener is not None and self._adopt is not None
        while True:
            try:
                request, fds, uid = receive_connection(self._listener)
            except BlockingIOError:
                return
            except OSError as exc:
                logger.warning("Could not receive a handed-over connection: %r", exc)
                return
            if uid != os.getuid() or len(fds) != 1 or request is None:
                for fd in fds:
                    os.close(fd)
                logger.warning("Dropped a handed-over connection that was not a whole request from this user")
                continue
            try:
                self._adopt(fds[0], request)
                self.adopted += 1
                logger.debug("Serving a websocket a sibling process handed over")
            except Exception:
                logger.exception("Could not serve a handed-over connection")


def send_connection(sender: socket.socket, name: str, fd: int, request: bytes) -> bool:
    """Send the socket ``fd`` and ``request`` to the handoff socket ``name``; False when it did not take them."""
    try:
        sender.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))], 0, "\0" + name)
    except OSError as exc:  # gone (ECONNREFUSED), its queue full (EAGAIN), too large (EMSGSIZE)
        logger.debug("Relaying instead of handing a websocket over to %s: %r", name, exc)
        return False
    return True


def receive_connection(listener: socket.socket) -> tuple[bytes | None, list[int], int | None]:
    """The next datagram: its bytes (None when cut short), the descriptors it carried, the sender's uid."""
    data, ancillary, flags, _ = listener.recvmsg(MAX_REQUEST_BYTES + 1, _ANCILLARY_BYTES, socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    uid = None
    for level, kind, payload in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_RIGHTS:
            numbers = array.array("i")
            numbers.frombytes(payload[: len(payload) - len(payload) % _FD_SIZE])
            fds.extend(numbers)
        elif kind == socket.SCM_CREDENTIALS and len(payload) >= _CREDENTIALS.size:
            uid = _CREDENTIALS.unpack_from(payload)[1]
    whole = not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) and len(data) <= MAX_REQUEST_BYTES
    return (data if whole else None), fds, uid
