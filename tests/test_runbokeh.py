"""manage.py runbokeh: bokeh serve's arguments turned into a served web application."""
from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from bokehserver import core_placement, registry
from bokehserver.core_placement import Sample
from bokehserver.management.commands import runbokeh

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class FakeServer:
    """Stands in for daphne: records what it was given and 'listens' on the port it was asked for."""

    instances: list[FakeServer] = []

    def __init__(self, web_application, asgi_application, *, address, port, on_listen):
        self.web_application = web_application
        self.asgi_application = asgi_application
        self.address = address
        self.port = port
        self.on_listen = on_listen
        FakeServer.instances.append(self)

    def run(self):
        self.on_listen(self.address or "0.0.0.0", self.port or 43210)


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(runbokeh.Command, "server_class", FakeServer)
    FakeServer.instances.clear()
    # the command runs in the test process: record where it would put its threads instead of moving pytest's
    placed = FakeServer.placed = []
    watched = FakeServer.watched = []
    monkeypatch.setattr(core_placement, "place_threads", lambda cores: placed.append(set(cores)))
    monkeypatch.setattr(runbokeh.Command, "watch", lambda self, placement: watched.append(placement))

    def run_command(*args: str) -> tuple[FakeServer, str]:
        out = StringIO()
        call_command("runbokeh", *args, stdout=out)
        return FakeServer.instances[-1], out.getvalue()

    yield run_command
    registry.uninstall()


def test_scripts_directories_and_notebooks_get_bokeh_serve_routes(run):
    server, out = run(str(EXAMPLES / "sliders.py"), str(EXAMPLES / "dirapp"), str(EXAMPLES / "notebook.ipynb"), "--port", "5123")
    web_app = server.web_application
    # the apps named, and the admin's dashboard (the demo site sets DASHBOARD_PATH)
    assert web_app.app_paths == {"/sliders", "/dirapp", "/notebook", "/bokehserver-dashboard"}
    assert server.port == 5123
    assert web_app.websocket_origins is None  # the site's trusted origins
    assert "Bokeh app running at: http://localhost:5123/sliders" in out
    assert registry.get_web_application() is web_app


def test_options_map_to_the_web_application(run):
    server, out = run(
        str(EXAMPLES / "sliders.py"),
        "--port", "5200", "--address", "127.0.0.1", "--prefix", "/pre/",
        "--allow-websocket-origin", "example.com", "--allow-websocket-origin", "foo.org:8080",
        "--keep-alive", "1000", "--check-unused-sessions", "500", "--unused-session-lifetime", "700",
        "--stats-log-frequency", "900", "--session-token-expiration", "60",
        "--websocket-max-message-size", "4096", "--websocket-max-send-queue", "8192", "--disable-index", "--disable-index-redirect",
        "--args", "one", "--two",
    )
    web_app = server.web_application
    assert server.address == "127.0.0.1"
    assert web_app.prefix == "/pre"
    assert web_app.websocket_origins == {"example.com:80", "foo.org:8080"}
    assert (web_app.keep_alive_milliseconds, web_app.check_unused_sessions_milliseconds) == (1000, 500)
    assert (web_app.unused_session_lifetime_milliseconds, web_app.stats_log_frequency_milliseconds) == (700, 900)
    assert web_app.session_token_expiration == 60
    assert web_app.websocket_max_message_size_bytes == 4096
    assert web_app.websocket_max_send_queue_bytes == 8192
    assert not web_app.use_index and not web_app.redirect_root
    handler = web_app.applications["/sliders"].handlers[0]
    assert handler._runner._argv == ["one", "--two"]
    assert "http://127.0.0.1:5200/pre/sliders" in out


def test_app_code_threads_option(run, monkeypatch):
    from bokehserver import app_code

    monkeypatch.setattr(app_code, "_threads", None)  # back to the settings after the test
    assert app_code.thread_count() == 32
    run(str(EXAMPLES / "sliders.py"), "--app-code-threads", "0")
    assert app_code.thread_count() == 0


@pytest.mark.parametrize(("mode", "signed", "generate"), [
    ("unsigned", False, True), ("signed", True, True), ("external-signed", True, False),
])
def test_session_id_modes(run, monkeypatch, mode, signed, generate):
    monkeypatch.setenv("BOKEH_SECRET_KEY", "k" * 44)
    server, _ = run(str(EXAMPLES / "sliders.py"), "--session-ids", mode)
    assert server.web_application.sign_sessions is signed
    assert server.web_application.generate_session_ids is generate


def test_signed_sessions_without_a_key_are_refused(run, monkeypatch):
    monkeypatch.delenv("BOKEH_SECRET_KEY", raising=False)
    with pytest.raises(CommandError, match="secret key"):
        run(str(EXAMPLES / "sliders.py"), "--session-ids", "signed")


def test_glob_expands_patterns(run):
    server, _ = run(str(EXAMPLES / "s*.py"), "--glob")
    assert {"/sliders", "/streaming"} <= server.web_application.app_paths


def test_no_path_serves_the_settings_apps(run):
    server, _ = run()
    assert {"/sliders", "/dirapp", "/widgets", "/measurements"} <= server.web_application.app_paths


def test_port_zero_reports_the_real_port(run):
    server, out = run(str(EXAMPLES / "sliders.py"), "--port", "0")
    assert "localhost:43210/sliders" in out


@pytest.mark.parametrize("bad", ["missing.py", "README.md"])
def test_bad_paths_are_clear_errors(run, bad):
    with pytest.raises(CommandError, match="no such file|expected a directory"):
        run(str(EXAMPLES / bad))


def test_a_notebook_without_nbconvert_is_a_clear_error(run, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_nbconvert(name, *args, **kwargs):
        if name == "nbconvert":
            raise ImportError("No module named 'nbconvert'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nbconvert)
    with pytest.raises(CommandError, match="nbconvert"):
        run(str(EXAMPLES / "notebook.ipynb"))


def test_bad_origin_is_a_clear_error(run):
    with pytest.raises(CommandError, match="Invalid port"):
        run(str(EXAMPLES / "sliders.py"), "--allow-websocket-origin", "example.com:http")


def test_system_checks_run_before_serving(monkeypatch, settings):
    from django.core.management.base import SystemCheckError

    monkeypatch.setattr(runbokeh.Command, "server_class", FakeServer)
    FakeServer.instances.clear()
    settings.BOKEHSERVER = {"APPS": ["not", "a", "dict"]}
    with pytest.raises(SystemCheckError, match="bokehserver.E001"):
        call_command("runbokeh", skip_checks=False, stdout=StringIO())
    assert FakeServer.instances == []


def test_the_sites_asgi_application_is_served(run):
    import project.asgi

    server, _ = run(str(EXAMPLES / "sliders.py"))
    assert server.asgi_application.wrapped is project.asgi.application  # behind the static files


def test_a_site_without_asgi_application_gets_django_with_bokehs_websockets(run, settings):
    del settings.ASGI_APPLICATION
    server, _ = run(str(EXAMPLES / "sliders.py"))
    assert getattr(server.asgi_application.wrapped, "bokehserver", False)


def test_the_banner_shows_apps_where_the_urlconf_includes_them(run, settings):
    from types import ModuleType

    from django.urls import include, path

    urlconf = ModuleType("dashboards_urls")
    urlconf.urlpatterns = [path("dashboards/", include("bokehserver.urls"))]
    settings.ROOT_URLCONF = urlconf
    _, out = run(str(EXAMPLES / "sliders.py"), "--port", "5123", "--prefix", "bk")
    assert "Bokeh app running at: http://localhost:5123/dashboards/bk/sliders" in out


def test_an_asgi_application_not_built_by_bokehserver_is_served_with_a_warning(run, settings, monkeypatch, caplog):
    import sys
    from types import ModuleType

    from django.core.asgi import get_asgi_application

    plain = ModuleType("plain_asgi")
    plain.application = get_asgi_application()
    monkeypatch.setitem(sys.modules, "plain_asgi", plain)
    settings.ASGI_APPLICATION = "plain_asgi.application"
    with caplog.at_level("WARNING", logger="bokehserver.routing"):
        server, _ = run(str(EXAMPLES / "sliders.py"))
    assert server.asgi_application.wrapped is plain.application
    assert any("plain_asgi.application" in r.getMessage() and "cannot connect" in r.getMessage() for r in caplog.records)


def test_more_than_one_process_needs_a_shared_channel_layer(run):
    with pytest.raises(CommandError, match=r"2 server processes need a channel layer they share.*CHANNEL_LAYERS.*channels-redis"):
        run(str(EXAMPLES / "sliders.py"), "--num-procs", "2")
    assert FakeServer.instances == []


def test_a_negative_process_count_is_refused(run):
    with pytest.raises(CommandError, match="--num-procs must be an int >= 0"):
        run(str(EXAMPLES / "sliders.py"), "--num-procs", "-1")


@pytest.mark.parametrize(("args", "replacement"), [
    (["--auth-module", "auth.py"], "BOKEHSERVER['ACCESS']"),
    (["--enable-xsrf-cookies"], "CsrfViewMiddleware"),
    (["--cookie-secret", "s3cret"], "SECRET_KEY"),
    (["--use-xheaders"], "--proxy-headers"),
    (["--include-headers", "X-User"], "BOKEHSERVER['INCLUDE_HEADERS']"),
    (["--dev"], "restart runbokeh"),
])
def test_bokeh_serve_options_replaced_by_the_site_are_refused_with_their_replacement(run, args, replacement):
    with pytest.raises(CommandError) as refused:
        run(str(EXAMPLES / "sliders.py"), *args)
    message = str(refused.value)
    assert f"{args[0]} is a bokeh serve option runbokeh does not take" in message
    assert replacement in message
    assert FakeServer.instances == []


def test_help_lists_every_replaced_option_with_its_replacement():
    from bokehserver.management.serve_options import REPLACED_OPTIONS

    command = runbokeh.Command()
    help_text = " ".join(command.create_parser("manage.py", "runbokeh").format_help().split())
    for option, (_, replacement) in REPLACED_OPTIONS.items():
        assert option in help_text
        assert " ".join(replacement.split()) in help_text


def test_every_bokeh_serve_option_is_taken_or_refused_with_a_replacement():
    from bokeh.command.subcommands.serve import Serve

    from bokehserver.management.serve_options import REPLACED_OPTIONS

    parser = runbokeh.Command().create_parser("manage.py", "runbokeh")
    taken = {option for action in parser._actions for option in action.option_strings}
    served = {name for names, _ in Serve.args for name in ((names,) if isinstance(names, str) else names)
              if name.startswith("--")}
    missing = served - taken - {"--log-file", "--log-format"}  # logging: the site's LOGGING
    assert missing == set()
    assert set(REPLACED_OPTIONS) <= served


def test_pin_cores_pins_the_process_and_says_which_core(run, monkeypatch, caplog):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2, 5}, raising=False)
    with caplog.at_level("INFO", logger="bokehserver.management.commands.runbokeh"):
        run("--pin-cores", "--port", "0")
    assert FakeServer.placed == [{2}] and FakeServer.watched == []  # the first core it may use, for good
    assert "runs on CPU core 2 only" in caplog.text


def test_pin_cores_where_the_platform_cannot_pin_is_a_clear_error(run, monkeypatch):
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    with pytest.raises(CommandError, match="--pin-cores: .*sched_setaffinity"):
        run("--pin-cores", "--port", "0")


@pytest.mark.skipif(not core_placement.can_place(), reason="placing threads needs Linux's sched_setaffinity and /proc")
def test_by_default_the_process_takes_the_least_busy_core_and_is_watched(run, monkeypatch):
    samples = iter([Sample(1.0, 0.0, {0: (0, 0), 1: (0, 0)}), Sample(1.5, 0.4, {0: (45, 50), 1: (10, 50)})])
    monkeypatch.setattr(core_placement, "read_sample", lambda: next(samples))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    run("--port", "0")
    [placement] = FakeServer.watched
    assert FakeServer.placed == [{1}] and placement.core == 1 and placement.watching


def test_no_pin_cores_leaves_the_threads_to_the_kernel(run):
    run("--no-pin-cores", "--port", "0")
    assert FakeServer.watched == [] and FakeServer.placed == []


def test_pin_cores_and_no_pin_cores_exclude_each_other(run):
    with pytest.raises(CommandError, match="not allowed with argument"):
        run("--pin-cores", "--no-pin-cores", "--port", "0")


def test_a_pin_cores_setting_that_is_no_mode_is_a_clear_error(run, settings):
    settings.BOKEHSERVER = {**settings.BOKEHSERVER, "PIN_CORES": "always"}
    with pytest.raises(CommandError, match=r"PIN_CORES'\] must be \"auto\", True or False, got 'always'"):
        run("--port", "0")


def test_workers_are_pinned_to_the_cores_in_turn(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 3}, raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cores: None, raising=False)
    assert [core_placement.pin_to_core(index) for index in range(5)] == [0, 1, 3, 0, 1]
