"""App pages and autoload.js may be framed (FRAME_APP_PAGES), the site's own pages keep X-Frame-Options."""
from __future__ import annotations

import pytest
from django.test import AsyncClient

AUTOLOAD = "/app/autoload.js?bokeh-autoload-element=el&bokeh-app-path=/app&bokeh-absolute-url=http://testserver/app"


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


@pytest.fixture
def apps(web_app, bk):
    return web_app({"/app": bk.slider_doc})


@pytest.mark.parametrize("path", ["/app", AUTOLOAD])
async def test_app_pages_can_be_framed_by_default(apps, client, settings, path):
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in settings.MIDDLEWARE
    response = await client.get(path)
    assert response.status_code == 200
    assert "X-Frame-Options" not in response


@pytest.mark.parametrize("path", ["/app", AUTOLOAD])
async def test_without_frame_app_pages_the_site_decides(apps, client, settings, path):
    settings.BOKEHSERVER = {**settings.BOKEHSERVER, "FRAME_APP_PAGES": False}
    settings.X_FRAME_OPTIONS = "SAMEORIGIN"
    response = await client.get(path)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "SAMEORIGIN"


async def test_the_sites_own_pages_keep_djangos_default(apps, client):
    response = await client.get("/accounts/login/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    index = await client.get("/")
    assert index["X-Frame-Options"] == "DENY"
