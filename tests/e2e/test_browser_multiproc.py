"""Headless Chromium through nginx round-robin over two server processes: no sticky sessions needed."""
from __future__ import annotations

import pytest

from e2e.test_multiproc import RELAY_APP, hook_file, server_env, sessions_built  # noqa: F401 (hook_file: a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.redis]

WAIT_MS = 60_000
PAGES = 20

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream bokeh {{ server 127.0.0.1:{first}; server 127.0.0.1:{second}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://bokeh;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $http_host;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""

DOC_READY_JS = """() => window.Bokeh !== undefined && Bokeh.documents.length === 1
    && Bokeh.documents[0].get_model_by_name("echo") != null"""
SET_JS = """(value) => { Bokeh.documents[0].get_model_by_name("slider").value = value; }"""
TEXT_JS = """([name, text]) => Bokeh.documents[0].get_model_by_name(name).text === text"""
TICKS_JS = """() => Number(Bokeh.documents[0].get_model_by_name("ticks").text)"""
TICKED_JS = """(after) => Number(Bokeh.documents[0].get_model_by_name("ticks").text) > after"""


@pytest.fixture
def nginx(tmp_path, free_port, server_process, require_service):
    executable = require_service("nginx")

    def start(first: int, second: int):
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp_path, first=first, second=second, port=port))
        proxy = server_process([executable, "-c", str(conf), "-p", str(tmp_path)], port=port,
                               log_path=tmp_path / "nginx.log", ready_path="/static/js/bokeh.min.js")
        proxy.start()
        return proxy

    return start


def test_chromium_through_round_robin_gets_one_live_session_per_page(
        bokeh_server_factory, redis_url, hook_file, nginx, chromium_page):
    env = server_env(redis_url, hook_file, BOKEHSERVER_LOG_LEVEL="DEBUG")
    first = bokeh_server_factory(str(RELAY_APP), env=env)
    second = bokeh_server_factory(str(RELAY_APP), env=env)
    proxy = nginx(first.port, second.port)
    page = chromium_page.page
    builders = set()
    try:
        for number in range(PAGES):
            page.goto(f"http://127.0.0.1:{proxy.port}/relay_app", timeout=WAIT_MS)
            page.wait_for_function(DOC_READY_JS, timeout=WAIT_MS)
            page.evaluate(SET_JS, number + 10)
            page.wait_for_function(TEXT_JS, arg=["echo", str(number + 10)], timeout=WAIT_MS)
            page.wait_for_function(TICKED_JS, arg=page.evaluate(TICKS_JS), timeout=WAIT_MS)
            builders.add(page.evaluate("""() => Bokeh.documents[0].get_model_by_name("pid").text"""))
    finally:
        proxy.stop()
    built = sessions_built(hook_file)
    # one session per page: its websocket, wherever nginx sent it, found the session the page built
    assert len(built) == PAGES and len({session_id for session_id, _ in built}) == PAGES, built
    assert builders == {str(first.pid), str(second.pid)}
    relayed = first.log_text().count("Relaying websocket") + second.log_text().count("Relaying websocket")
    assert relayed >= 1
    assert chromium_page.errors == []
    assert first.log_problems() == [] and second.log_problems() == []
