"""Incoming frames become one event per plain Bokeh message; anything else passes frame by frame, in order."""
from __future__ import annotations

import json

import pytest

from bokehserver._compat.daphne import frame_gatherer
from bokehserver.gathering import HEADER_PARSE_LIMIT, FrameGatherer, buffer_count

LIMIT = 1000


def header(**fields) -> bytes:
    return json.dumps({"msgid": "m1", "msgtype": "PATCH-DOC", **fields}).encode()


class Recorder:
    def __init__(self, limit: int = LIMIT) -> None:
        self.seen: list[tuple] = []
        self.gatherer = FrameGatherer(limit, self.frame, self.message)

    def frame(self, payload: bytes, is_binary: bool) -> None:
        self.seen.append(("frame", payload, is_binary))

    def message(self, frames) -> None:
        self.seen.append(("message", frames))

    def feed(self, *frames: bytes | str) -> list[tuple]:
        for frame in frames:
            if isinstance(frame, str):
                self.gatherer.feed(frame.encode("utf-8"), False)
            else:
                self.gatherer.feed(frame, True)
        seen, self.seen = self.seen, []
        return seen


def test_a_plain_message_is_one_event_of_its_three_decoded_frames_and_the_next_one_too():
    r = Recorder()
    assert r.feed(header().decode(), "{}", '{"events": ["\u00e9"]}') == [
        ("message", (header().decode(), "{}", '{"events": ["\u00e9"]}'))]
    assert r.feed(header(num_buffers=0).decode(), "{}") == []
    assert r.feed("{}") == [("message", (header(num_buffers=0).decode(), "{}", "{}"))]


def test_a_message_with_buffers_passes_frame_by_frame_then_gathering_resumes():
    r = Recorder()
    frames = [header(num_buffers=2).decode(), "{}", "{}", '{"id": "0"}', b"\x00\x01", '{"id": "1"}', b"\x02"]
    assert r.feed(*frames) == [("frame", f.encode() if isinstance(f, str) else f, isinstance(f, bytes)) for f in frames]
    assert r.feed(header().decode(), "{}", "{}") == [("message", (header().decode(), "{}", "{}"))]


@pytest.mark.parametrize("bad_header", ["not json", "[1, 2]", header(num_buffers=-1).decode(), header(num_buffers="1").decode(),
                                        header(num_buffers=1.0).decode()])
def test_after_a_header_bokeh_cannot_read_every_frame_passes_on_its_own(bad_header):
    r = Recorder()
    later = [bad_header, "{}", "{}", header().decode(), "{}", "{}"]
    assert r.feed(*later) == [("frame", f.encode(), False) for f in later]


@pytest.mark.parametrize("held", [0, 1, 2])
def test_a_binary_frame_where_text_belongs_releases_what_is_held_in_order_and_gathering_stops(held):
    r = Recorder()
    text = [header().decode(), "{}"][:held]
    assert r.feed(*text) == []
    assert r.feed(b"\x00", header().decode(), "{}", "{}") == (
        [("frame", t.encode(), False) for t in text] + [("frame", b"\x00", True)]
        + [("frame", t.encode(), False) for t in (header().decode(), "{}", "{}")])


def test_a_header_and_metadata_past_the_size_limit_are_released_so_the_consumer_refuses_them():
    r = Recorder(limit=200)
    big_metadata = json.dumps({"x": "y" * 200})
    assert r.feed(header().decode()) == []
    assert r.feed(big_metadata) == [("frame", header(), False), ("frame", big_metadata.encode(), False)]
    assert r.feed("{}") == [("frame", b"{}", False)]


def test_buffer_count_reads_headers_bokeh_reads():
    assert buffer_count(header()) == 0
    assert buffer_count(header(num_buffers=3)) == 3
    assert buffer_count(b"{") is None
    assert buffer_count(b'"text"') is None
    assert buffer_count(b" " * (HEADER_PARSE_LIMIT + 1) + b"{}") is None


def test_no_gathering_when_shortcuts_are_off():
    assert frame_gatherer(object(), LIMIT, False, lambda payload, is_binary: None) is None


def test_a_whole_message_goes_on_the_applications_queue_as_one_event_unless_muted():
    queued: list[dict] = []

    class Protocol:
        muted = False
        last_ping = 0.0

        class application_queue:
            put_nowait = queued.append

    protocol = Protocol()
    gatherer = frame_gatherer(protocol, LIMIT, True, lambda payload, is_binary: queued.append({"frame": payload}))
    for frame in (header(), b"{}", b"{}"):
        gatherer.feed(frame, False)
    assert queued == [{"type": "bokehserver.websocket.receive_frames", "frames": (header().decode(), "{}", "{}")}]
    assert protocol.last_ping > 0
    protocol.muted = True
    for frame in (header(), b"{}", b"{}"):
        gatherer.feed(frame, False)
    assert len(queued) == 1
