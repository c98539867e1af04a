"""Signals: sessions created and destroyed, connections opened and closed, each with its session."""
from __future__ import annotations

import logging
import re

import pytest

from bokehserver import signals

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')


@pytest.fixture
def received():
    seen: list[tuple[str, dict]] = []
    connected = []
    for name in ("session_created", "session_destroyed", "connection_opened", "connection_closed"):
        def receiver(sender, name=name, **kwargs):
            seen.append((name, kwargs))
        getattr(signals, name).connect(receiver)
        connected.append((getattr(signals, name), receiver))
    yield seen
    for signal, receiver in connected:
        signal.disconnect(receiver)


async def test_each_signal_is_sent_with_its_session(web_app, async_client, open_session, received, bk):
    app = web_app({"/app": bk.slider_doc})
    response = await async_client.get("/app?color=red")
    token = TOKEN_RE.search(response.content.decode()).group(1)
    [session] = app.get_sessions("/app")
    [(name, created)] = received
    assert name == "session_created" and created["session"] is session and created["app_path"] == "/app"
    assert created["request"].arguments["color"] == [b"red"]

    comm = await open_session("/app", token)
    opened = received[1]
    assert opened[0] == "connection_opened" and opened[1]["session"] is session and opened[1]["request"].path == "/app/ws"
    await comm.disconnect()
    closed = received[2]
    assert closed[0] == "connection_closed" and closed[1]["session"] is session and closed[1]["code"] == 1000

    assert await app.expire_session("/app", session.id)
    assert [name for name, _ in received] == ["session_created", "connection_opened", "connection_closed",
                                               "session_destroyed"]
    assert received[3][1]["session"] is session and received[3][1]["app_path"] == "/app"


async def test_a_failing_receiver_is_logged_and_the_session_still_opens(web_app, async_client, caplog, bk):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    signals.session_created.connect(broken)
    try:
        app = web_app({"/app": bk.slider_doc})
        with caplog.at_level(logging.ERROR, logger="bokehserver.signals"):
            assert (await async_client.get("/app")).status_code == 200
    finally:
        signals.session_created.disconnect(broken)
    assert len(app.get_sessions("/app")) == 1
    [record] = [r for r in caplog.records if r.name == "bokehserver.signals"]
    assert "receiver bug" in str(record.exc_info[1])
