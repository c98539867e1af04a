"""Django auth in front of apps: pages redirect to the login, other endpoints and websockets refuse."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from bokeh.models import Div
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.asgi import get_asgi_application

from bokehserver.asgi import bokeh_asgi_application
from bokehserver.consumers import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)


def _doc(doc):
    doc.add_root(Div(text="x"))


@pytest.fixture
async def user():
    return await sync_to_async(get_user_model().objects.create_user)("viewer", password="pw")


async def test_guarded_page_redirects_anonymous_users_to_the_login(web_app, async_client, user):
    web_app({"/secret": _doc, "/open": _doc}, login_required=["/secret"])
    response = await async_client.get("/secret?x=1")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/secret%3Fx%3D1"
    assert (await async_client.get("/open")).status_code == 200
    assert (await async_client.get("/secret/autoload.js?bokeh-autoload-element=e")).status_code == 403
    assert (await async_client.get("/secret/metadata")).status_code == 403

    await async_client.aforce_login(user)
    assert (await async_client.get("/secret")).status_code == 200
    assert (await async_client.get("/secret/metadata")).status_code == 200


async def test_login_required_everywhere_guards_the_index_too(web_app, async_client):
    web_app({"/a": _doc, "/b": _doc}, login_required=True)
    assert (await async_client.get("/")).status_code == 302


def test_login_required_must_name_served_apps():
    from bokehserver.asgi import BokehASGI

    with pytest.raises(ValueError, match="not served"):
        BokehASGI({"/a": _doc}, login_required=["/nope"])


async def test_websocket_of_a_guarded_app_needs_the_logged_in_user(web_app, async_client, user, bk):
    web_app({"/secret": _doc}, login_required=["/secret"])
    application = bokeh_asgi_application(get_asgi_application())
    token = bk.make_token()

    anonymous = WebsocketCommunicator(application, "/secret/ws", subprotocols=["bokeh", token])
    connected, _ = await anonymous.connect()
    assert connected
    output = await anonymous.receive_output(timeout=bk.TIMEOUT)
    assert output == {"type": "websocket.close", "code": CloseCode.FORBIDDEN, "reason": "login required"}

    await async_client.aforce_login(user)
    cookie = f"sessionid={async_client.cookies['sessionid'].value}".encode()
    logged_in = WebsocketCommunicator(application, "/secret/ws", subprotocols=["bokeh", token], headers=[(b"cookie", cookie)])
    connected, subprotocol = await logged_in.connect()
    assert connected and subprotocol == "bokeh"
    assert (await bk.read_message(logged_in)).header["msgtype"] == "ACK"
    await logged_in.disconnect()
