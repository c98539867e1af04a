"""Live sessions per user and per client address: refused past the limit, freed when sessions go."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from bokeh.models import Div
from bokeh.util.token import generate_jwt_token, generate_session_id
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from bokehserver.access import USER_KEY
from bokehserver.consumers import CloseCode
from bokehserver.quotas import LimitReached, SessionQuotas


class FromAddress(AsyncClient):
    """A test client whose requests come from ``address`` (the ASGI scope's client)."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def _base_scope(self, **request):
        return {**super()._base_scope(**request), "client": [self.address, 1234]}


def _doc(doc):
    doc.add_root(Div(text="x", name="d"))


def test_quotas_count_per_user_and_address_and_forget_released_sessions(settings):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_USER": 2, "MAX_SESSIONS_PER_ADDRESS": 3}
    quotas = SessionQuotas()
    quotas.take("s1", "7", "10.0.0.1")
    quotas.take("s1", "7", "10.0.0.1")  # the same session counts once
    quotas.take("s2", "7", "10.0.0.2")
    with pytest.raises(LimitReached, match=r"user 7 already has 2 sessions \(MAX_SESSIONS_PER_USER\)"):
        quotas.take("s3", "7", "10.0.0.3")
    quotas.take("s3", None, "10.0.0.1")  # anonymous sessions only count against their address
    quotas.take("s4", "8", "10.0.0.1")
    with pytest.raises(LimitReached, match=r"10.0.0.1 already has 3 sessions \(MAX_SESSIONS_PER_ADDRESS\)"):
        quotas.take("s5", None, "10.0.0.1")
    assert (quotas.held_by_user("7"), quotas.held_by_address("10.0.0.1")) == (2, 3)
    for session_id in ("s1", "s2", "s3", "s4", "unknown"):
        quotas.release(session_id)
    assert (quotas.held_by_user("7"), quotas.held_by_address("10.0.0.1")) == (0, 0)
    assert quotas._users == {} and quotas._addresses == {} and quotas._holders == {}


def test_limits_set_to_none_are_off(settings):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_USER": None, "MAX_SESSIONS_PER_ADDRESS": None}
    quotas = SessionQuotas()
    for number in range(500):
        quotas.take(f"s{number}", "7", "10.0.0.1")
    assert quotas.held_by_user("7") == 500


def test_the_address_limit_is_off_and_the_user_limit_on_by_default():
    from bokehserver import conf

    assert conf.DEFAULTS["MAX_SESSIONS_PER_ADDRESS"] is None
    assert conf.DEFAULTS["MAX_SESSIONS_PER_USER"] == 200


async def test_pages_from_one_address_past_the_limit_get_503_and_other_addresses_are_served(web_app, settings, bokeh_warnings):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_ADDRESS": 2}
    app = web_app({"/a": _doc, "/b": _doc})
    crowded = FromAddress("10.1.1.1")
    assert (await crowded.get("/a")).status_code == 200
    assert (await crowded.get("/b")).status_code == 200  # the limit spans apps
    refused = await crowded.get("/a")
    assert refused.status_code == 503
    assert b"10.1.1.1 already has 2 sessions (MAX_SESSIONS_PER_ADDRESS)" in refused.content
    assert any("MAX_SESSIONS_PER_ADDRESS" in r.getMessage() and r.exc_info is None for r in bokeh_warnings())
    assert (await FromAddress("10.2.2.2").get("/a")).status_code == 200
    assert len(app.get_sessions()) == 3
    # a destroyed session no longer counts
    [first, *_] = app.get_sessions("/a")
    assert await app.expire_session("/a", first.id)
    assert (await crowded.get("/a")).status_code == 200


async def test_a_half_built_session_holds_its_place_and_a_refused_one_gives_it_back(web_app, settings):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_ADDRESS": 1}

    def broken(doc):
        _doc(doc)
        raise RuntimeError("no")

    app = web_app({"/broken": broken, "/a": _doc})
    client = FromAddress("10.1.1.1")
    assert (await client.get("/broken")).status_code == 200  # served with what it built, as bokeh serve
    assert (await client.get("/a")).status_code == 503  # and it is a live session like any other
    [session] = app.get_sessions("/broken")
    assert await app.expire_session("/broken", session.id)
    # an ended session's id is refused; the refused build does not keep the address's place
    assert (await client.get("/broken", {"bokeh-session-id": session.id})).status_code == 403
    assert (await client.get("/a")).status_code == 200


def _ws(asgi_application, path: str, token: str, address: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(asgi_application, f"{path}/ws", subprotocols=["bokeh", token])
    comm.scope["client"] = (address, 5555)  # the consumer task reads the scope when it first runs
    return comm


async def test_websockets_from_one_address_past_the_limit_are_closed_4029(web_app, asgi_application, settings, bk):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_ADDRESS": 1}
    app = web_app({"/a": _doc})
    first = _ws(asgi_application, "/a", bk.make_token(), "10.3.3.3")
    second = _ws(asgi_application, "/a", bk.make_token(), "10.3.3.3")
    try:
        assert await first.connect() == (True, "bokeh")
        assert (await bk.read_message(first)).msgtype == "ACK"
        assert await second.connect() == (True, "bokeh")
        code, reason = await bk.read_close(second)
        assert code == CloseCode.LIMIT_REACHED == 4029
        assert reason == "10.3.3.3 already has 1 sessions (MAX_SESSIONS_PER_ADDRESS)"
        assert len(app.get_sessions("/a")) == 1
    finally:
        await first.disconnect()
        await second.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_users_sessions_past_the_limit_are_refused_on_pages_and_websockets(web_app, asgi_application, settings, bk):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_USER": 2}
    app = web_app({"/a": _doc}, login_required=True, sign_sessions=None)
    user = await sync_to_async(get_user_model().objects.create_user)("busy", password="pw")
    other = await sync_to_async(get_user_model().objects.create_user)("calm", password="pw")
    client = AsyncClient()
    await client.aforce_login(user)
    elsewhere = FromAddress("10.9.9.9")
    await elsewhere.aforce_login(user)
    assert (await client.get("/a")).status_code == 200
    assert (await elsewhere.get("/a")).status_code == 200  # wherever the user comes from
    refused = await client.get("/a")
    assert refused.status_code == 503
    assert f"user {user.pk} already has 2 sessions (MAX_SESSIONS_PER_USER)".encode() in refused.content
    # a websocket with a token of this user for a new session is refused too
    token = generate_jwt_token(generate_session_id(secret_key=app.secret_key, signed=True), secret_key=app.secret_key,
                               signed=True, extra_payload={USER_KEY: str(user.pk)})
    cookie = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    comm = WebsocketCommunicator(asgi_application, "/a/ws", subprotocols=["bokeh", token], headers=cookie)
    try:
        assert await comm.connect() == (True, "bokeh")
        assert await bk.read_close(comm) == (4029, f"user {user.pk} already has 2 sessions (MAX_SESSIONS_PER_USER)")
    finally:
        await comm.disconnect()
    others = AsyncClient()
    await others.aforce_login(other)
    assert (await others.get("/a")).status_code == 200
    assert len(app.get_sessions("/a")) == 3


async def test_a_refusal_is_logged_once_and_not_again_by_django_as_a_server_error(web_app, settings, caplog):
    settings.BOKEHSERVER = {"MAX_SESSIONS_PER_ADDRESS": 1}
    web_app({"/a": _doc})
    client = FromAddress("10.4.4.4")
    assert (await client.get("/a")).status_code == 200
    caplog.clear()
    with caplog.at_level("INFO"):
        assert (await client.get("/a")).status_code == 503
    lines = [(r.name, r.levelname) for r in caplog.records if r.levelno >= 30]
    assert lines == [("bokehserver.views", "WARNING")]  # django.request would add an ERROR (and mail ADMINS)
