"""Headless Chromium as a site's user: the login form, the user's own session, an embedded app, logout."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from processes import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.usefixtures("hard_timeout")]

WAIT_MS = 60_000
READY_JS = """(text) => window.Bokeh !== undefined && Bokeh.documents.length > 0
    && Bokeh.documents.some(d => { const g = d.get_model_by_name('greeting'); return g !== null && g.text === text })"""


@pytest.fixture(scope="module")
def server(bokeh_server_factory, free_port, e2e_database):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "BOKEHSERVER_DB": str(e2e_database)}
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    "from django.contrib.auth.models import User; User.objects.create_user('alice', password='alice-pw')"],
                   cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    return bokeh_server_factory("--allow-websocket-origin", f"127.0.0.1:{port}", port=port,
                                env={"BOKEHSERVER_LOGIN_REQUIRED": "/whoami"})


def test_login_own_session_embedded_app_and_logout_in_another_tab(server, chromium_browser, artifacts_dir):
    context = chromium_browser.new_context()
    context.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    try:
        app_tab = context.new_page()
        app_tab.on("pageerror", lambda exc: errors.append(str(exc)))
        app_tab.goto(server.app_url("whoami"))
        assert "/accounts/login/?next=/whoami" in app_tab.url  # the site's own login form
        app_tab.fill("input[name=username]", "alice")
        app_tab.fill("input[name=password]", "alice-pw")
        app_tab.click("button[type=submit]")
        app_tab.wait_for_url(server.app_url("whoami"))
        app_tab.wait_for_function(READY_JS, arg="Hello, alice")
        app_tab.get_by_role("button", name="Who am I?").click()
        app_tab.get_by_text("You are alice.").wait_for()

        page_tab = context.new_page()
        page_tab.goto(f"{server.url}/embed/")
        page_tab.get_by_text("Signed in as alice").wait_for()
        page_tab.wait_for_function(READY_JS, arg="Hello, alice")
        page_tab.get_by_role("button", name="Who am I?").click()
        page_tab.get_by_text("You are alice.").wait_for()
        page_tab.screenshot(path=str(artifacts_dir / "embedded-app.png"))

        page_tab.click("#logout")
        page_tab.wait_for_url("**/accounts/login/")
        notice = app_tab.get_by_text("This session has ended: logged out")
        notice.wait_for()
        assert notice.is_visible()
        app_tab.screenshot(path=str(artifacts_dir / "session-ended-by-logout.png"))
        assert errors == []
    finally:
        context.close()
    assert server.log_problems() == []
