"""System checks: each misconfiguration reported with its id."""
from __future__ import annotations

import pytest

from bokehserver import checks

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
