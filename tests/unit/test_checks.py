"""System checks: each misconfiguration reported with its id."""
from __future__ import annotations

from pathlib import Path

import pytest

from bokehserver import checks

REPO = Path(__file__).resolve().parents[2]

REDIS = "channels_redis.core.RedisChannelLayer"


def redis_layers(*hosts):
    return {"default": {"BACKEND": REDIS, "CONFIG": {"hosts": list(hosts)}}}


@pytest.mark.parametrize(
    ("hosts", "redis_default", "warned"),
    [
        (["redis://127.0.0.1:6379"], 5.0, True),             # redis-py 8: 5 s, as long as the blocking receive
        (["redis://127.0.0.1:6379"], None, False),           # redis-py 7 and older: no socket timeout
        ([{"address": "redis://127.0.0.1:6379", "socket_timeout": 30}], 5.0, False),
        ([{"address": "redis://127.0.0.1:6379", "socket_timeout": None}], 5.0, False),
        ([{"address": "redis://127.0.0.1:6379", "socket_timeout": 2}], None, True),
        ([("127.0.0.1", 6379)], 5.0, True),
    ],
)
def test_a_redis_socket_timeout_no_longer_than_the_blocking_receive_is_warned(settings, monkeypatch, hosts,
                                                                             redis_default, warned):
    monkeypatch.setattr(checks, "_redis_py_default_socket_timeout", lambda: redis_default)
    settings.CHANNEL_LAYERS = redis_layers(*hosts)
    problems = checks.check_redis_channel_layer()
    assert [p.id for p in problems] == (["bokehserver.W010"] if warned else [])
    if warned:
        assert "socket_timeout" in problems[0].hint and problems[0].obj == "default"


def test_the_in_memory_layer_is_not_a_redis_problem(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert checks.check_redis_channel_layer() == []


def test_the_redis_py_installed_here_is_read():
    from importlib.metadata import version

    expected = 5.0 if int(version("redis").split(".")[0]) >= 8 else None
    assert checks._redis_py_default_socket_timeout() == expected


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("no/such/app.py", "no such file or directory"),
        ("examples.nope:modify_doc", "cannot import"),
        ("broken.py", "SyntaxError"),
        ("notes.txt", "expected a directory"),
        ("emptydir", "needs a main.py or main.ipynb"),
    ],
)
def test_an_app_that_cannot_load_is_an_error(settings, tmp_path, monkeypatch, spec, problem):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.py").write_text("def oops(:\n")
    (tmp_path / "notes.txt").write_text("not an app")
    (tmp_path / "emptydir").mkdir()
    settings.BOKEHSERVER = {"APPS": {"/ok": str(REPO / "examples" / "sliders.py"),
                                     "/bad": spec}}
    problems = checks.check_apps_load()
    assert [(p.id, p.obj) for p in problems] == [("bokehserver.E004", "/bad")]
    assert problem in problems[0].msg


def test_a_script_is_compiled_not_run(settings, tmp_path):
    script = tmp_path / "app.py"
    script.write_text("raise SystemExit('ran at check time')\n")
    settings.BOKEHSERVER = {"APPS": {"/app": str(script)}}
    assert checks.check_apps_load() == []


def test_an_asgi_application_without_websockets_is_warned(settings):
    settings.ASGI_APPLICATION = "django.core.handlers.asgi.ASGIHandler"
    assert [p.id for p in checks.check_websocket_route()] == ["bokehserver.W011"]
    settings.ASGI_APPLICATION = "project.asgi.application"
    assert checks.check_websocket_route() == []
    settings.ASGI_APPLICATION = "project.nowhere.application"
    assert [p.id for p in checks.check_websocket_route()] == ["bokehserver.E005"]


def test_deploy_warns_about_unsigned_sessions_and_a_layer_of_one_process(settings, monkeypatch, redis_url):
    monkeypatch.delenv("BOKEH_SIGN_SESSIONS", raising=False)
    settings.BOKEHSERVER = {"APPS": {}}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert [p.id for p in checks.check_deployment()] == ["bokehserver.W020", "bokehserver.W021"]
    settings.BOKEHSERVER = {"APPS": {}, "LOGIN_REQUIRED": True}  # signed by default then
    settings.CHANNEL_LAYERS = redis_layers("redis://127.0.0.1:1")  # nothing listens on port 1
    assert [p.id for p in checks.check_deployment()] == ["bokehserver.W022"]
    settings.BOKEHSERVER = {"APPS": {}, "SIGN_SESSIONS": True}
    settings.CHANNEL_LAYERS = redis_layers({"address": redis_url, "socket_timeout": 30})
    assert checks.check_deployment() == []


def test_check_deploy_lists_bokehservers_warnings():
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    out = StringIO()
    try:
        call_command("check", "--deploy", stdout=out, stderr=out)
    except SystemCheckError as exc:
        out.write(str(exc))
    text = out.getvalue()
    assert "bokehserver.W020" in text


@pytest.mark.parametrize(("path", "wrong"), [("/bokehserver-dashboard", False), (None, False), ("/", True),
                                             ("/sliders/", True), (42, True)])
def test_the_dashboard_needs_a_path_of_its_own(settings, path, wrong):
    settings.BOKEHSERVER = {"APPS": {"/sliders": "examples/sliders.py"}, "DASHBOARD_PATH": path}
    ids = [problem.id for problem in checks.check_settings()]
    assert ("bokehserver.E030" in ids) == wrong
