"""Session records and the admin: live sessions listed, and expired from the admin."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from bokeh.models import Div
from django.contrib.auth import get_user_model
from django.urls import reverse

from bokehserver.models import BokehSession

pytestmark = pytest.mark.django_db(transaction=True)

# records are written by the test's own flush() calls, never by the worker's job behind its back
HOUR_MS = 3_600_000


def _doc(doc):
    doc.add_root(Div(text="x", name="d"))


@pytest.fixture
async def admin_client(async_client):
    from asgiref.sync import sync_to_async

    user = await sync_to_async(get_user_model().objects.create_superuser)("admin", "a@example.com", "pw")
    await async_client.aforce_login(user)
    return async_client


async def test_records_follow_sessions_and_the_admin_lists_them(web_app, admin_client):
    app = web_app({"/app": _doc}, record_interval_milliseconds=HOUR_MS)
    await admin_client.get("/app")
    await admin_client.get("/app")
    session_ids = {s.id for s in app.get_sessions("/app")}
    assert await app.records.flush() == 2
    rows = [r async for r in BokehSession.objects.all()]
    assert {r.session_id for r in rows} == session_ids
    assert all(r.live and r.pid == os.getpid() and r.app_path == "/app" and r.connections == 0 for r in rows)

    page = await admin_client.get(reverse("admin:bokehserver_bokehsession_changelist") + "?state=live")
    assert page.status_code == 200
    for session_id in session_ids:
        assert session_id in page.content.decode()


async def test_expire_action_destroys_the_session_and_runs_its_hooks(web_app, admin_client):
    destroyed = []

    def modify_doc(doc):
        _doc(doc)
        doc.on_session_destroyed(lambda ctx: destroyed.append(ctx.id))

    app = web_app({"/app": modify_doc}, record_interval_milliseconds=HOUR_MS)
    await admin_client.get("/app")
    [session] = app.get_sessions("/app")
    await app.records.flush()
    record = await BokehSession.objects.aget(session_id=session.id)
    response = await admin_client.post(
        reverse("admin:bokehserver_bokehsession_changelist"),
        {"action": "end_sessions", "_selected_action": [record.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Ended 1 sessions (1 in this process, 0 in other processes)" in response.content.decode()
    assert session.destroyed and destroyed == [session.id]
    assert app.get_sessions("/app") == []
    await app.records.flush()
    record = await BokehSession.objects.aget(pk=record.pk)
    assert record.destroyed_at is not None


async def test_a_database_failure_is_logged_and_retried(web_app, caplog, monkeypatch):
    app = web_app({"/app": _doc}, record_interval_milliseconds=HOUR_MS)
    context = app.context_for("/app")
    await context.create_session_if_needed("s1")
    monkeypatch.setattr(app.records, "_write", lambda *args: (_ for _ in ()).throw(RuntimeError("db down")))
    assert await app.records.flush() == 0
    assert app.records.pending == 1
    assert any("db down" in r.getMessage() and r.exc_info is None for r in caplog.records)
    monkeypatch.undo()
    assert await app.records.flush() == 1


def test_tidying_records_at_startup_leaves_no_connection_open_in_its_thread():
    """It runs on a loop's executor thread, which ends with the loop: an open connection would be
    dropped unclosed (PostgreSQL's driver warns, a server counts it until it times out)."""
    import threading

    from django.db import connection

    from bokehserver.records import SessionRecords

    left_open = []

    def tidy():
        SessionRecords().close_orphans_sync()
        left_open.append(connection.connection is not None)

    thread = threading.Thread(target=tidy)
    thread.start()
    thread.join(30)
    assert left_open == [False]


async def _record_of_another_process(session_id: str, *, seconds_since_heartbeat: float) -> BokehSession:
    now = datetime.now(timezone.utc)
    return await BokehSession.objects.acreate(
        session_id=session_id, app_path="/app", host="elsewhere", pid=999_999, connections=1,
        created_at=now - timedelta(hours=1), updated_at=now - timedelta(seconds=seconds_since_heartbeat),
    )


async def test_records_of_a_process_without_heartbeat_show_as_ended(web_app, admin_client, settings):
    settings.BOKEHSERVER = {"RECORD_HEARTBEAT_MILLISECONDS": 10_000}
    gone = await _record_of_another_process("gone-session", seconds_since_heartbeat=31)
    beating = await _record_of_another_process("beating-session", seconds_since_heartbeat=5)
    assert not gone.live and gone.process_gone
    assert beating.live

    changelist = reverse("admin:bokehserver_bokehsession_changelist")
    live_page = (await admin_client.get(changelist + "?state=live")).content.decode()
    assert "beating-session" in live_page and "gone-session" not in live_page
    ended_page = (await admin_client.get(changelist + "?state=destroyed")).content.decode()
    assert "gone-session" in ended_page and "beating-session" not in ended_page


async def test_a_running_process_refreshes_its_records_and_ends_those_of_gone_processes(web_app, settings):
    settings.BOKEHSERVER = {"RECORD_HEARTBEAT_MILLISECONDS": 10_000}
    app = web_app({"/app": _doc}, record_interval_milliseconds=HOUR_MS)
    await app.context_for("/app").create_session_if_needed("mine")
    gone = await _record_of_another_process("gone-session", seconds_since_heartbeat=31)
    beating = await _record_of_another_process("beating-session", seconds_since_heartbeat=5)
    await app.records.flush()
    mine = await BokehSession.objects.aget(session_id="mine")
    await BokehSession.objects.filter(pk=mine.pk).aupdate(updated_at=mine.updated_at - timedelta(seconds=20))

    app.records._last_heartbeat = float("-inf")  # the next heartbeat is due
    await app.records.flush()

    gone = await BokehSession.objects.aget(pk=gone.pk)
    assert gone.destroyed_at is not None and gone.connections == 0
    assert (await BokehSession.objects.aget(pk=beating.pk)).destroyed_at is None
    refreshed = await BokehSession.objects.aget(pk=mine.pk)
    assert refreshed.live and refreshed.updated_at > mine.updated_at


async def test_expiring_a_session_of_a_gone_process_says_it_already_ended(web_app, admin_client, settings):
    settings.BOKEHSERVER = {"RECORD_HEARTBEAT_MILLISECONDS": 10_000}
    web_app({"/app": _doc})
    gone = await _record_of_another_process("gone-session", seconds_since_heartbeat=31)
    response = await admin_client.post(
        reverse("admin:bokehserver_bokehsession_changelist"),
        {"action": "end_sessions", "_selected_action": [gone.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "1 sessions had already ended: their server processes are gone" in page
    assert "did not answer" not in page


def test_tidying_at_startup_ends_only_the_records_of_dead_processes(monkeypatch):
    """A record this process writes while the tidying runs (its first sessions) stays live."""
    import subprocess
    import sys

    from bokehserver import records as records_module
    from bokehserver.records import SessionRecords

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tidy = SessionRecords()
    now = datetime.now(timezone.utc)
    BokehSession.objects.create(session_id="of-the-dead", app_path="/app", host=tidy.host, pid=dead.pid,
                                created_at=now, updated_at=now)
    real_kill = os.kill

    def kill_while_a_session_is_written(pid, sig):
        BokehSession.objects.create(session_id="mine", app_path="/app", host=tidy.host, pid=os.getpid(),
                                    created_at=now, updated_at=now)
        return real_kill(pid, sig)

    monkeypatch.setattr(records_module.os, "kill", kill_while_a_session_is_written)
    assert tidy.close_orphans_sync() == 1
    assert BokehSession.objects.get(session_id="of-the-dead").status == "gone"
    mine = BokehSession.objects.get(session_id="mine")
    assert mine.destroyed_at is None and mine.status == "live"
