"""Django auth in front of apps, and sessions bound to the user who opened them."""
from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from bokeh.models import Div
from bokeh.util.token import generate_jwt_token, get_session_id, get_token_payload
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from bokehserver.access import USER_KEY
from bokehserver.consumers import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')


def _doc(doc):
    doc.add_root(Div(text="x", name="d"))


def _create_user(name: str, **extra):
    return sync_to_async(get_user_model().objects.create_user)(name, password="pw", **extra)


@pytest.fixture
async def user():
    return await _create_user("viewer")


async def logged_in(user) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


def cookie_of(client: AsyncClient) -> list[tuple[bytes, bytes]]:
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def page_token(client: AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.content[:300]
    return TOKEN_RE.search(response.content.decode()).group(1)


async def close_of(asgi_application, path: str, token: str, headers=()) -> dict:
    comm = WebsocketCommunicator(asgi_application, f"{path}/ws", subprotocols=["bokeh", token], headers=list(headers))
    connected, _ = await comm.connect()
    assert connected
    try:
        return await comm.receive_output(timeout=30)
    finally:
        await comm.disconnect()


async def test_guarded_page_redirects_anonymous_users_to_the_login(web_app, async_client, user):
    web_app({"/secret": _doc, "/open": _doc}, login_required=["/secret"])
    response = await async_client.get("/secret?x=1")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/secret%3Fx%3D1"
    assert (await async_client.get("/open")).status_code == 200
    assert (await async_client.get("/secret/metadata")).status_code == 403

    await async_client.aforce_login(user)
    assert (await async_client.get("/secret")).status_code == 200
    assert (await async_client.get("/secret/metadata")).status_code == 200


async def test_a_refused_autoload_script_shows_the_refusal_in_its_element(web_app, async_client):
    web_app({"/secret": _doc}, login_required=True)
    response = await async_client.get("/secret/autoload.js?bokeh-autoload-element=my-el")
    assert response.status_code == 200 and response["Content-Type"] == "application/javascript"
    script = response.content.decode()
    assert 'document.getElementById("my-el")' in script and "/secret: login required" in script
    assert "token" not in script


async def test_login_required_everywhere_guards_the_index_too(web_app, async_client):
    web_app({"/a": _doc, "/b": _doc}, login_required=True)
    assert (await async_client.get("/")).status_code == 302


def test_login_required_and_access_must_name_served_apps():
    from bokehserver.asgi import BokehASGI

    with pytest.raises(ValueError, match="not served"):
        BokehASGI({"/a": _doc}, login_required=["/nope"])
    with pytest.raises(ValueError, match="not served"):
        BokehASGI({"/a": _doc}, access={"/nope": "login"})
    with pytest.raises(ValueError, match="unknown access rule"):
        BokehASGI({"/a": _doc}, access={"/a": "staff"})


def test_sessions_are_signed_with_the_sites_key_when_an_app_needs_a_user(settings, monkeypatch):
    from bokehserver.asgi import BokehASGI

    monkeypatch.delenv("BOKEH_SIGN_SESSIONS", raising=False)
    monkeypatch.delenv("BOKEH_SECRET_KEY", raising=False)
    guarded = BokehASGI.from_settings(applications={"/a": _doc}, login_required=True)
    assert guarded.sign_sessions and guarded.secret_key == settings.SECRET_KEY.encode()
    public = BokehASGI.from_settings(applications={"/a": _doc})
    assert not public.sign_sessions  # as bokeh serve: bokeh.client needs no key for public apps
    explicit = BokehASGI.from_settings(applications={"/a": _doc}, login_required=True, sign_sessions=False)
    assert not explicit.sign_sessions


async def test_websocket_of_a_guarded_app_needs_the_logged_in_user(web_app, user, asgi_application, bk):
    web_app({"/secret": _doc}, login_required=["/secret"], sign_sessions=None)
    client = await logged_in(user)
    token = await page_token(client, "/secret")
    assert get_token_payload(token)[USER_KEY] == str(user.pk)

    closed = await close_of(asgi_application, "/secret", token)
    assert closed == {"type": "websocket.close", "code": CloseCode.FORBIDDEN, "reason": "login required"}

    comm = WebsocketCommunicator(asgi_application, "/secret/ws", subprotocols=["bokeh", token], headers=cookie_of(client))
    assert await comm.connect() == (True, "bokeh")
    assert (await bk.read_message(comm)).msgtype == "ACK"
    await comm.disconnect()


async def test_another_users_token_is_refused(web_app, user, asgi_application):
    web_app({"/secret": _doc}, login_required=True, sign_sessions=None)
    alice, bob = await logged_in(user), await logged_in(await _create_user("bob"))
    alices_token = await page_token(alice, "/secret")
    closed = await close_of(asgi_application, "/secret", alices_token, cookie_of(bob))
    assert closed["code"] == CloseCode.FORBIDDEN and closed["reason"] == "session belongs to another user"
    page = await bob.get(f"/secret?bokeh-token={alices_token}")
    assert page.status_code == 403 and b"another user" in page.content


async def test_another_users_session_id_is_refused(web_app, user):
    app = web_app({"/secret": _doc}, login_required=True, sign_sessions=None)
    alice, bob = await logged_in(user), await logged_in(await _create_user("bob"))
    session_id = get_session_id(await page_token(alice, "/secret"))
    response = await bob.get(f"/secret?bokeh-session-id={session_id}")
    assert response.status_code == 403 and b"session belongs to another user" in response.content
    assert (await alice.get(f"/secret?bokeh-session-id={session_id}")).status_code == 200
    assert [s.id for s in app.get_sessions("/secret")] == [session_id]


async def test_joining_by_session_id_with_an_unsigned_token_needs_the_same_user(web_app, user, asgi_application):
    app = web_app({"/open": _doc})  # public and unsigned, as bokeh serve by default
    alice = await logged_in(user)
    session_id = get_session_id(await page_token(alice, "/open"))
    forged = generate_jwt_token(session_id, signed=False)  # no user in it
    closed = await close_of(asgi_application, "/open", forged)
    assert closed["code"] == CloseCode.FORBIDDEN and closed["reason"] == "session belongs to another user"
    assert app.get_sessions("/open")[0].owner == str(user.pk)


async def test_a_deactivated_user_is_refused(web_app, user, asgi_application):
    web_app({"/secret": _doc}, login_required=True, sign_sessions=None)
    client = await logged_in(user)
    token = await page_token(client, "/secret")
    user.is_active = False
    await user.asave()
    closed = await close_of(asgi_application, "/secret", token, cookie_of(client))
    assert closed["code"] == CloseCode.FORBIDDEN and closed["reason"] == "login required"


async def test_permission_and_callable_rules(web_app, user):
    from django.contrib.auth.models import Permission

    def only_viewer(request):
        return request.user.username == "viewer"

    web_app({"/perm": _doc, "/fn": _doc, "/open": _doc},
            access={"/perm": "perm:bokehserver.view_bokehsession", "/fn": only_viewer})
    viewer, other = await logged_in(user), await logged_in(await _create_user("other"))
    assert (await viewer.get("/perm")).status_code == 403
    await sync_to_async(user.user_permissions.add)(await Permission.objects.aget(codename="view_bokehsession"))
    viewer = await logged_in(await get_user_model().objects.aget(pk=user.pk))  # permissions are cached per user
    assert (await viewer.get("/perm")).status_code == 200
    assert (await viewer.get("/fn")).status_code == 200
    assert (await other.get("/fn")).status_code == 403
    assert (await AsyncClient().get("/fn")).status_code == 302
    assert (await AsyncClient().get("/open")).status_code == 200


async def test_logging_out_ends_the_users_sessions_with_a_visible_reason(web_app, user, asgi_application, bk):
    app = web_app({"/secret": _doc}, login_required=True, sign_sessions=None)
    client = await logged_in(user)
    token = await page_token(client, "/secret")
    comm = WebsocketCommunicator(asgi_application, "/secret/ws", subprotocols=["bokeh", token], headers=cookie_of(client))
    assert await comm.connect() == (True, "bokeh")
    assert (await bk.read_message(comm)).msgtype == "ACK"
    await client.alogout()
    notice = await bk.read_message(comm)
    assert notice.msgtype == "PATCH-DOC"
    assert "This session has ended: logged out" in str(notice.content)
    assert await bk.read_close(comm) == (4010, "session ended: logged out")
    assert app.get_sessions("/secret") == []
    # the page's token opens nothing any more: no fresh session behind the user's back
    closed = await close_of(asgi_application, "/secret", token, cookie_of(await logged_in(user)))
    assert closed["code"] == 4010 and closed["reason"] == "session ended: logged out"


async def test_the_login_check_ends_sessions_of_logins_that_went_away(web_app, user):
    from django.contrib.sessions.models import Session

    from bokehserver.logins import check_logins

    app = web_app({"/secret": _doc}, login_required=True, sign_sessions=None)
    kept, dropped = await logged_in(user), await logged_in(user)
    await page_token(kept, "/secret")
    await page_token(dropped, "/secret")
    assert len(app.get_sessions("/secret")) == 2
    await Session.objects.filter(session_key=dropped.cookies["sessionid"].value).adelete()
    assert await check_logins(app.application_contexts.values()) == 1
    [left] = app.get_sessions("/secret")
    assert left.login_key == kept.cookies["sessionid"].value
    user.is_active = False
    await user.asave()
    assert await check_logins(app.application_contexts.values()) == 1
    assert app.get_sessions("/secret") == []
