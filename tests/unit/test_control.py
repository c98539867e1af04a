"""The control listener and expire requests: they survive a failing channel layer and report what happened."""
from __future__ import annotations

import asyncio
import logging
import os
from types import SimpleNamespace
from typing import Any

import pytest

from bokehserver import control

from waiting import eventually


class FlakyLayer:
    """A channel layer whose receive fails ``failures`` times (a killed Redis connection), then serves."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.groups_joined = 0
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def new_channel(self) -> str:
        return "specific.test!listener"

    async def group_add(self, group: str, channel: str) -> None:
        self.groups_joined += 1

    async def group_discard(self, group: str, channel: str) -> None:
        pass

    async def receive(self, channel: str) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Connection closed by server.")
        return await self.inbox.get()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        self.sent.append((channel, message))


class App:
    def __init__(self) -> None:
        self.expired: list[tuple[str, str]] = []

    async def expire_session(self, app_path: str, session_id: str, reason: str = "", status: str = "") -> bool:
        self.expired.append((app_path, session_id))
        return session_id != "gone"


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(control, "RETRY_FIRST_SECONDS", 0.001)
    monkeypatch.setattr(control, "RETRY_MAX_SECONDS", 0.002)


def expire_message(session_id: str, **overrides: Any) -> dict[str, Any]:
    return {"type": control.EXPIRE, "host": control.HOST, "pid": os.getpid(), "reply_to": "specific.asker!1",
            "app_path": "/app", "session_id": session_id, **overrides}


async def test_the_listener_outlives_a_failing_layer_logs_the_outage_once_and_answers(monkeypatch, caplog, fast_retries):
    layer = FlakyLayer(failures=5)
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: layer)
    app = App()
    with caplog.at_level(logging.WARNING, logger="bokehserver.control"):
        task = asyncio.create_task(control.listen(app))
        try:
            await layer.inbox.put(expire_message("s1"))
            await layer.inbox.put(expire_message("s2", pid=os.getpid() + 1))  # another process's: ignored
            await layer.inbox.put(expire_message("gone"))
            await eventually(lambda: len(layer.sent) == 2)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert app.expired == [("/app", "s1"), ("/app", "gone")]
    assert [message for _, message in layer.sent] == [
        {"type": control.EXPIRED, "session_id": "s1", "ended": True},
        {"type": control.EXPIRED, "session_id": "gone", "ended": False},
    ]
    assert layer.groups_joined == 6  # first join and one per failed receive
    lost = [r for r in caplog.records if "lost the channel layer" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.ERROR and "Connection closed" in lost[0].getMessage()
    assert [r.getMessage() for r in caplog.records if "rejoined" in r.getMessage()] == [
        "Control listener rejoined the channel layer"]


def record(session_id: str, pid: int) -> Any:
    return SimpleNamespace(session_id=session_id, app_path="/app", host=control.HOST, pid=pid, destroyed_at=None)


async def test_sessions_of_a_process_that_does_not_answer_are_reported_unreachable(monkeypatch):
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: layer)
    result = await control.expire_sessions([record("s1", pid=os.getpid() + 1)], None, reply_seconds=0.2)
    assert (result.here, result.elsewhere, result.unreachable) == (0, 0, ["s1"])


async def test_without_a_channel_layer_other_processes_are_unreachable(monkeypatch):
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: None)
    result = await control.expire_sessions([record("s1", pid=os.getpid() + 1)], None)
    assert (result.ended, result.unreachable) == (0, ["s1"])


async def test_a_process_that_answers_is_counted(monkeypatch):
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: layer)
    app = App()
    listener = asyncio.create_task(control.listen(app, address=(control.HOST, 1)))  # plays process 1
    try:
        await eventually(lambda: layer.groups.get(control.CONTROL_GROUP))
        result = await control.expire_sessions([record("s1", pid=1), record("gone", pid=1)], None)
    finally:
        listener.cancel()
    assert (result.here, result.elsewhere, result.unreachable) == (0, 1, [])
    assert sorted(app.expired) == [("/app", "gone"), ("/app", "s1")]
