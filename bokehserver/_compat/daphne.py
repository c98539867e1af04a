"""What the daphne server changes in autobahn's websocket protocol and Twisted's transport.

Speed shortcuts, each on the versions it was proven on: a Bokeh message's frames written in one
write and handed to the socket at once; an incoming message's frames handed to the application
as one event (``gathering``); whole plain incoming frames read without autobahn's per-frame
machinery (``frame_reading``) and other small ones unmasked without a masker object each; and
autobahn's configuration dump and per-read debug line formatted only when debug lines are logged. Elsewhere daphne
and autobahn do each as they do.
"""
from __future__ import annotations

import pprint
import time
from collections.abc import Callable, Sequence
from typing import Any

import autobahn.websocket.protocol as _autobahn_protocol
import txaio
from autobahn.twisted.websocket import WebSocketAdapterProtocol
from twisted.internet import tcp as _tcp

from ..frames import Frames, websocket_bytes
from ..gathering import RECEIVE_FRAMES, FrameGatherer
from .frame_reading import SMALL_FRAME_BYTES, read_frames, unmask
from .twisted import unsent_bytes
from .versions import proven

__all__ = (
    "FrameWriter", "SmallFrameUnmasker", "data_reader", "frame_gatherer", "frame_writer", "install_config_dump_shortcut",
    "install_small_frame_unmasker", "pformat_if_logged",
)

FrameWriter = Callable[[Any, Sequence["str | bytes"]], None]
_upstream_pformat = _autobahn_protocol.pformat
_upstream_create_xor_masker = _autobahn_protocol.create_xor_masker
_upstream_data_received = WebSocketAdapterProtocol.dataReceived


def send_each_frame(protocol: Any, frames: Sequence[str | bytes]) -> None:
    """autobahn's way: one ``sendMessage`` per frame, each framed and written by autobahn."""
    for frame in frames:
        if isinstance(frame, str):
            protocol.sendMessage(frame.encode("utf-8"), False)
        else:
            protocol.sendMessage(frame, True)


def write_whole_message(protocol: Any, frames: Sequence[str | bytes]) -> None:
    """Send every frame of one message in one write, then hand them to the socket now.

    Twisted's transport keeps each write until the loop's next turn; a callback that updates
    many sessions would hold all their messages back until it ends (bokeh serve's Tornado
    writes at once). One message's frames still go out in one send, straight to the socket when
    the transport holds nothing else.
    """
    transport = protocol.transport
    if protocol.send_state == protocol.SEND_STATE_GROUND and protocol._perMessageCompress is None and not protocol.send_queue:
        data = websocket_bytes(frames)
        if _sends_at_once(transport):
            sent = transport.writeSomeData(data)
            if sent == len(data):
                return
            if type(sent) is int and sent > 0:
                data = data[sent:]  # the kernel took part: the transport keeps the rest, in order
        transport.write(data)  # a lost connection shows in the transport's next write, as before
    else:  # autobahn is mid-message, compressing or queueing: let it frame them
        send_each_frame(protocol, frames)
    if getattr(transport, "TLS", False) or getattr(transport, "disconnecting", True) or transport.disconnected:
        return  # leave closing and TLS connections to the reactor
    do_write = getattr(transport, "doWrite", None)
    if do_write is not None and (transport.dataBuffer or transport._tempDataBuffer):
        do_write()  # a failure stays in the transport, which the reactor reports on its next write


def _sends_at_once(transport: Any) -> bool:
    """Whether ``transport`` is a plain TCP connection holding nothing unsent, so that a message can go
    straight to its socket: Twisted's ``write`` would register the socket with the loop for writing,
    then the flush below send it and unregister it again, for every message."""
    if type(transport) is not _tcp.Server or unsent_bytes(transport) != 0:
        return False
    try:
        return transport.connected and not transport.disconnecting and not transport._writeDisconnected
    except AttributeError:
        return False


def frame_writer(shortcuts: bool) -> FrameWriter:
    """How a websocket protocol writes one Bokeh message: at once where proven and ``shortcuts``, else autobahn's way."""
    if shortcuts and proven("frame writes"):
        return write_whole_message
    return send_each_frame


def pformat_if_logged(obj: Any, *args: Any, **kwargs: Any) -> str:
    """autobahn pretty-prints its whole configuration for a debug line at every websocket
    connection, logged or not: a fifth of a handshake's CPU. Format only when debug is on."""
    if txaio.get_global_log_level() in ("debug", "trace"):
        return pprint.pformat(obj, *args, **kwargs)
    return "(autobahn debug logging is off)"


def read_quietly(protocol: Any, data: bytes) -> None:
    """autobahn's ``dataReceived``, without the debug line it formats (four coloured strings) for
    every read whether debug is logged or not; with debug logging on, autobahn's own."""
    if txaio.get_global_log_level() in ("debug", "trace"):
        _upstream_data_received(protocol, data)
    else:
        protocol._dataReceived(data)


def read_plain_frames_first(protocol: Any, data: bytes) -> None:
    """Whole plain frames read by ``frame_reading``, the rest quietly by autobahn; with debug logging on, autobahn's own."""
    if txaio.get_global_log_level() in ("debug", "trace"):
        _upstream_data_received(protocol, data)
    else:
        read_frames(protocol, data, read_quietly)


def data_reader(shortcuts: bool) -> Callable[[Any, bytes], None]:
    """How a websocket protocol takes bytes from Twisted: plain frames first and quietly where proven
    and ``shortcuts``, else autobahn's way."""
    if not (shortcuts and proven("autobahn read debug line")):
        return _upstream_data_received
    return read_plain_frames_first if proven("frame reading") else read_quietly


def install_config_dump_shortcut(shortcuts: bool) -> bool:
    """Format autobahn's handshake config dump only when logged (where proven and ``shortcuts``); else autobahn's own.

    Returns whether the shortcut is in place.
    """
    use = shortcuts and proven("autobahn config dump")
    _autobahn_protocol.pformat = pformat_if_logged if use else _upstream_pformat
    return use


def frame_gatherer(protocol: Any, limit: int, shortcuts: bool, hand_over_frame: Callable[[bytes, bool], None]) -> FrameGatherer | None:
    """A gatherer handing ``protocol``'s application one event per Bokeh message, where proven and
    ``shortcuts``; None keeps daphne's one event per frame.

    Frames it passes on one by one go to ``hand_over_frame`` (daphne's own ``onMessage``); a
    whole message goes on the application's queue as daphne puts a frame there (not while the
    protocol is muted, and noting the activity for daphne's ping timeout).
    """
    if not (shortcuts and proven("message gathering")):
        return None

    def hand_over_message(frames: Frames) -> None:
        if protocol.muted:
            return
        protocol.last_ping = time.time()
        protocol.application_queue.put_nowait({"type": RECEIVE_FRAMES, "frames": frames})

    return FrameGatherer(limit, hand_over_frame, hand_over_message)


class SmallFrameUnmasker:
    """Removes a client's mask (RFC 6455 5.3) from a small frame's payload: one XOR of two big integers.

    autobahn makes a native masker object for every incoming frame, whose set-up and buffer
    copies cost several times the XOR of a few hundred bytes. Like autobahn's maskers, it keeps
    its place in the payload across ``process`` calls, for a frame split over several reads.
    """

    __slots__ = ("_mask", "_position")

    def __init__(self, mask: bytes) -> None:
        self._mask = bytes(mask)
        self._position = 0

    def pointer(self) -> int:
        return self._position

    def reset(self) -> None:
        self._position = 0

    def process(self, data: bytes) -> bytes:
        size = len(data)
        mask, shift = self._mask, self._position & 3
        if shift:
            mask = mask[shift:] + mask[:shift]
        self._position += size
        return unmask(data, mask)


def create_masker(mask: bytes, length: int | None = None) -> Any:
    """autobahn's masker factory, with ``SmallFrameUnmasker`` for frames up to ``SMALL_FRAME_BYTES``."""
    if length is not None and 0 < length <= SMALL_FRAME_BYTES and len(mask) == 4:
        return SmallFrameUnmasker(mask)
    return _upstream_create_xor_masker(mask, length)


def install_small_frame_unmasker(shortcuts: bool) -> bool:
    """Unmask small frames with ``SmallFrameUnmasker`` (where proven and ``shortcuts``), else autobahn's own maskers.

    Returns whether the shortcut is in place.
    """
    use = shortcuts and proven("small frame unmasking")
    _autobahn_protocol.create_xor_masker = create_masker if use else _upstream_create_xor_masker
    return use
