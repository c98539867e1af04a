"""What the admin shows of a session (owner, status, traffic, live state) and who may see, end or delete it."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest
from asgiref.sync import sync_to_async
from bokeh.models import Div
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from bokehserver import control, inspection
from bokehserver.consumers import CloseCode
from bokehserver.dashboard import with_dashboard
from bokehserver.models import BokehSession
from waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

HOUR_MS = 3_600_000
CHANGELIST = "admin:bokehserver_bokehsession_changelist"


def ticking_doc(doc):
    """A titled document with a periodic callback, as the detail page should describe it."""
    def tick():
        pass

    doc.add_root(Div(text="x", name="ticker"))
    doc.title = "Ticking app"
    doc.add_periodic_callback(tick, 750)


async def user(name: str, *, staff: bool = False, superuser: bool = False, perms: tuple[str, ...] = ()):
    model = get_user_model()
    if superuser:
        made = await sync_to_async(model.objects.create_superuser)(name, f"{name}@example.com", "pw")
    else:
        made = await sync_to_async(model.objects.create_user)(name, f"{name}@example.com", "pw", is_staff=staff)
    for codename in perms:
        await sync_to_async(made.user_permissions.add)(await Permission.objects.aget(codename=codename))
    return made


@pytest.fixture
async def admin_client(async_client):
    await async_client.aforce_login(await user("admin", superuser=True))
    return async_client


async def record_of(session) -> BokehSession:
    return await BokehSession.objects.select_related("user").aget(session_id=session.id)


async def test_records_carry_the_owner_traffic_and_how_the_session_ended(web_app, admin_client, open_session, bk, bokeh_warnings):
    app = web_app({"/app": bk.slider_doc}, record_interval_milliseconds=HOUR_MS)
    await admin_client.get("/app")
    [owned] = app.get_sessions("/app")
    comm = await open_session("/app")  # nobody's session, with traffic
    await bk.request(comm, bk.protocol.create("PULL-DOC-REQ"))
    await app.records.flush()

    record = await record_of(owned)
    assert record.user.username == "admin" and record.username == "admin"
    assert record.status == "live" and record.last_activity is not None
    other = await BokehSession.objects.exclude(pk=record.pk).aget()
    assert other.user is None and other.username == ""
    assert other.connections == 1 and other.messages_in == 1 and other.messages_out == 2  # ACK, PULL-DOC-REPLY
    assert other.bytes_in > 0 and other.bytes_out > other.bytes_in

    await admin_client.post(reverse(CHANGELIST), {"action": "end_sessions", "_selected_action": [record.pk]})
    await comm.disconnect()
    await eventually_unsubscribed(app)
    await app.context_for("/app").cleanup_sessions(0)
    await app.records.flush()
    assert (await record_of(owned)).status == "admin"
    unused = await BokehSession.objects.aget(pk=other.pk)
    assert unused.status == "unused" and unused.destroyed_at is not None and unused.connections == 0


async def eventually_unsubscribed(app):
    from waiting import eventually

    await eventually(lambda: all(s.connection_count == 0 for s in app.get_sessions()))


async def test_record_writes_stay_bounded_under_a_thousand_patches(web_app, open_session, bk, settings):
    from django.db import connection

    settings.BOKEHSERVER = {"RECORD_HEARTBEAT_MILLISECONDS": HOUR_MS}  # only the writes of the burst are counted
    app = web_app({"/app": bk.slider_doc}, record_interval_milliseconds=HOUR_MS)
    comm = await open_session("/app")
    reply, _ = await bk.request(comm, bk.protocol.create("PULL-DOC-REQ"))
    doc = reply.content["doc"]
    queries: list[str] = []
    write = app.records._write

    def counted_write(*args):
        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            return write(*args)

    app.records._write = counted_write
    await app.records.flush()
    per_flush = []
    for n in range(1000):
        patch = bk.client_patch(doc, lambda d: setattr(d.get_model_by_name("s"), "value", 2 + n % 8))
        answer, _ = await bk.request(comm, patch)
        assert answer.msgtype == "OK"
        if n % 100 == 99:  # the record job's ticks during the burst
            before = len(queries)
            assert await app.records.flush() == 1
            per_flush.append(len(queries) - before)
    assert max(per_flush) <= 2, per_flush  # one upsert (and the transaction around it)
    assert await app.records.flush() == 0  # nothing moved since: nothing written
    record = await BokehSession.objects.aget()
    assert record.messages_in == 1001 and record.messages_out >= 1002


async def test_ended_records_are_deleted_after_the_retention_time(web_app, settings):
    settings.BOKEHSERVER = {"RECORD_RETENTION_SECONDS": 3600}
    app = web_app({"/app": bk_div}, record_interval_milliseconds=HOUR_MS)
    now = datetime.now(timezone.utc)
    for name, ended_ago in (("old", timedelta(hours=2)), ("recent", timedelta(minutes=5)), ("live", None)):
        await BokehSession.objects.acreate(
            session_id=name, app_path="/app", host="h", pid=1, created_at=now - timedelta(hours=3),
            updated_at=now, destroyed_at=None if ended_ago is None else now - ended_ago,
            status="live" if ended_ago is None else "unused")
    app.records._last_heartbeat = float("-inf")
    await app.records.flush()
    assert {r.session_id async for r in BokehSession.objects.all()} == {"recent", "live"}


def bk_div(doc):
    doc.add_root(Div(text="x"))


async def test_the_change_list_filters_searches_and_sorts_by_last_activity(web_app, admin_client, async_client):
    now = datetime.now(timezone.utc)
    admin = await get_user_model().objects.aget(username="admin")
    for name, minutes, owner, status in (("s-old", 30, None, "unused"), ("s-admins", 1, admin, "live"),
                                         ("s-mid", 10, None, "admin")):
        await BokehSession.objects.acreate(
            session_id=name, app_path="/app" if owner else "/other", host="h", pid=1, created_at=now,
            updated_at=now, last_activity=now - timedelta(minutes=minutes), user=owner,
            username=owner.username if owner else "", status=status,
            destroyed_at=None if status == "live" else now)
    changelist = reverse(CHANGELIST)
    page = (await admin_client.get(changelist)).content.decode()
    assert page.index("s-admins") < page.index("s-mid") < page.index("s-old")
    searched = (await admin_client.get(changelist + "?q=admin")).content.decode()
    assert "s-admins" in searched and "s-old" not in searched
    by_status = (await admin_client.get(changelist + "?status__exact=admin")).content.decode()
    assert "s-mid" in by_status and "s-admins" not in by_status
    by_user = (await admin_client.get(changelist + f"?user__id__exact={admin.pk}")).content.decode()
    assert "s-admins" in by_user and "s-mid" not in by_user
    by_app = (await admin_client.get(changelist + "?app_path=%2Fother")).content.decode()
    assert "s-old" in by_app and "s-admins" not in by_app
    assert (await admin_client.get(reverse("admin:bokehserver_bokehsession_add"))).status_code == 403


async def test_the_detail_page_shows_the_live_session(web_app, admin_client, open_session, bk):
    app = web_app({"/app": ticking_doc}, record_interval_milliseconds=HOUR_MS)
    await open_session("/app", headers=[(b"user-agent", b"pytest-agent/1.0"), (b"origin", b"http://localhost:5006")])
    await app.records.flush()
    record = await BokehSession.objects.aget()
    page = (await admin_client.get(reverse("admin:bokehserver_bokehsession_change", args=[record.pk]))).content.decode()
    assert "Live state (from this process)" in page, (str(record.__dict__), re.findall(r"<div class=\"readonly\">(.*?)</div>", page))
    assert "Ticking app" in page and "Div “ticker”" in page
    assert "periodic <code>ticking_doc.&lt;locals&gt;.tick</code> every 750 ms" in page
    assert "pytest-agent/1.0" in page
    assert "bytes serialized" in page and 'href="/app"' in page
    assert 'value="end_sessions"' in page


async def test_the_detail_page_reads_a_session_of_another_process_or_says_it_is_not_reachable(
        web_app, admin_client, monkeypatch):
    app = web_app({"/app": ticking_doc}, record_interval_milliseconds=HOUR_MS)
    session = await app.context_for("/app").create_session_if_needed("remote-one")
    now = datetime.now(timezone.utc)
    elsewhere = await BokehSession.objects.acreate(session_id=session.id, app_path="/app", host="elsewhere", pid=4242,
                                                   created_at=now, updated_at=now)
    listener = asyncio.create_task(control.listen(app, address=("elsewhere", 4242)))
    try:
        layer = get_channel_layer()
        await eventually(lambda: layer.groups.get(control.CONTROL_GROUP), what="the other process's listener joined")
        page = (await admin_client.get(reverse("admin:bokehserver_bokehsession_change", args=[elsewhere.pk]))).content.decode()
    finally:
        listener.cancel()
    assert "Live state (from elsewhere:4242)" in page and "Ticking app" in page and "every 750 ms" in page

    monkeypatch.setattr(inspection, "SESSION_REPLY_SECONDS", 0.2)
    silent = await BokehSession.objects.acreate(session_id="x", app_path="/app", host="silent", pid=1,
                                                created_at=now, updated_at=now)
    page = (await admin_client.get(reverse("admin:bokehserver_bokehsession_change", args=[silent.pk]))).content.decode()
    assert "Live state (not reachable)" in page and "silent:1 did not answer" in page


async def test_records_of_live_sessions_are_not_deleted(web_app, admin_client):
    app = web_app({"/app": bk_div}, record_interval_milliseconds=HOUR_MS)
    live = await app.context_for("/app").create_session_if_needed("live-one")
    ended = await app.context_for("/app").create_session_if_needed("ended-one")
    await app.context_for("/app").end_session(ended, "test")
    await app.records.flush()
    live_record, ended_record = await record_of(live), await record_of(ended)

    delete_view = reverse("admin:bokehserver_bokehsession_delete", args=[live_record.pk])
    assert (await admin_client.post(delete_view, {"post": "yes"})).status_code == 403
    response = await admin_client.post(reverse(CHANGELIST), {
        "action": "delete_selected", "post": "yes", "_selected_action": [live_record.pk, ended_record.pk]}, follow=True)
    assert "1 records of live sessions are not deleted: end the sessions first" in response.content.decode()
    assert [r.session_id async for r in BokehSession.objects.all()] == ["live-one"]
    assert not live.destroyed


async def test_viewing_needs_the_view_permission_and_ending_its_own(web_app, async_client):
    app = web_app({"/app": bk_div}, record_interval_milliseconds=HOUR_MS)
    session = await app.context_for("/app").create_session_if_needed("watched")
    await app.records.flush()
    record = await record_of(session)
    changelist, detail = reverse(CHANGELIST), reverse("admin:bokehserver_bokehsession_change", args=[record.pk])
    dashboard = reverse("admin:bokehserver_bokehsession_dashboard")

    await async_client.aforce_login(await user("plain", perms=("view_bokehsession", "end_bokehsession")))
    for url in (changelist, detail, dashboard):
        response = await async_client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    await async_client.aforce_login(await user("viewer", staff=True, perms=("view_bokehsession",)))
    page = (await async_client.get(changelist)).content.decode()
    assert "watched" in page and 'value="end_sessions"' not in page
    assert 'value="end_sessions"' not in (await async_client.get(detail)).content.decode()
    await async_client.post(changelist, {"action": "end_sessions", "_selected_action": [record.pk]})
    assert not session.destroyed
    assert (await async_client.get(dashboard)).status_code == 200

    await async_client.aforce_login(await user("ender", staff=True, perms=("view_bokehsession", "end_bokehsession")))
    await async_client.post(changelist, {"action": "end_sessions", "_selected_action": [record.pk]})
    assert session.destroyed

    await async_client.aforce_login(await user("nobody", staff=True))
    assert (await async_client.get(changelist)).status_code == 403
    assert (await async_client.get(dashboard)).status_code == 403


async def test_the_dashboard_app_is_for_staff_with_view_permission_only(web_app, async_client, ws, settings, bk):
    settings.BOKEHSERVER = {"DASHBOARD_PATH": "/dash"}
    apps, access = with_dashboard({"/app": bk_div}, {})
    web_app(apps, access=access, record_interval_milliseconds=HOUR_MS)

    assert (await async_client.get("/")).status_code in (200, 302)  # the index stays public ...
    assert "/dash" not in (await async_client.get("/", follow=True)).content.decode()  # ... and does not list it
    await async_client.aforce_login(await user("plain", perms=("view_bokehsession",)))
    assert (await async_client.get("/dash")).status_code == 403
    assert (await async_client.get(reverse("admin:bokehserver_bokehsession_dashboard"))).status_code == 302

    await async_client.aforce_login(await user("staffer", staff=True, perms=("view_bokehsession",)))
    page = await async_client.get(reverse("admin:bokehserver_bokehsession_dashboard"))
    assert page.status_code == 200 and "/dash/autoload.js" in page.content.decode()
    assert (await async_client.get("/dash")).status_code == 200

    comm = ws("/dash", bk.make_token(), headers=[(b"origin", b"http://localhost:5006")])
    connected, _ = await comm.connect(timeout=bk.TIMEOUT)
    assert connected
    assert (await bk.read_close(comm))[0] == CloseCode.FORBIDDEN  # no login on this socket


async def test_records_say_a_session_ended_by_logout_with_its_server_or_with_its_process(web_app, settings):
    settings.BOKEHSERVER = {"RECORD_HEARTBEAT_MILLISECONDS": 10_000}
    app = web_app({"/app": bk_div}, record_interval_milliseconds=HOUR_MS)
    context = app.context_for("/app")
    logged_out = await context.create_session_if_needed("logged-out")
    logged_out.login_key = "the-login"
    await context.create_session_if_needed("kept")
    now = datetime.now(timezone.utc)
    gone = await BokehSession.objects.acreate(session_id="gone", app_path="/app", host="elsewhere", pid=1,
                                              created_at=now, updated_at=now - timedelta(minutes=5))
    from bokehserver.access import login_digest

    assert await app.end_login_sessions(login_digest("the-login"), "logged out") == 1
    app.records._last_heartbeat = float("-inf")
    await app.records.flush()
    await context.discard_all_sessions()  # what stopping the server does
    await app.records.flush()
    statuses = {r.session_id: r.status async for r in BokehSession.objects.all()}
    assert statuses == {"logged-out": "logout", "kept": "stopped", "gone": "gone"}
    assert (await BokehSession.objects.aget(pk=gone.pk)).destroyed_at is not None
