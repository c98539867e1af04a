"""Websocket origin allowlists: the module's doctests, plus the errors and edges they leave out."""
from __future__ import annotations

import doctest
import logging

import pytest

from bokehserver import origins
from bokehserver.origins import check_whitelist, create_hosts_allowlist, match_host


def test_doctests_pass():
    result = doctest.testmod(origins, raise_on_error=False, report=False)
    assert result.failed == 0
    assert result.attempted > 10


@pytest.mark.parametrize(
    "hosts, message",
    [
        ([""], "Empty host value"),
        ([":5006"], "Empty host value"),
        (["example.com:port"], "Invalid port"),
        (["example.com:"], "Invalid port"),
        (["a:1:2"], "Invalid host value"),
        (["::1"], "Invalid host value"),
    ],
)
def test_create_hosts_allowlist_rejects_bad_values(hosts, message):
    with pytest.raises(ValueError, match=message):
        create_hosts_allowlist(hosts, 5006)


def test_create_hosts_allowlist_defaults_to_localhost_on_the_port():
    assert create_hosts_allowlist([], 8000) == ["localhost:8000"]
    assert create_hosts_allowlist(None, 5006) == ["localhost:5006"]


def test_create_hosts_allowlist_keeps_wildcard_ports_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="bokehserver.origins"):
        assert create_hosts_allowlist(["example.com:*", "*.example.com"], 5006) == ["example.com:*", "*.example.com:80"]
    warned = [r for r in caplog.records if r.name == "bokehserver.origins" and r.levelno == logging.WARNING]
    assert len(warned) == 2


def test_create_hosts_allowlist_does_not_warn_without_wildcards(caplog):
    with caplog.at_level(logging.WARNING, logger="bokehserver.origins"):
        create_hosts_allowlist(["example.com", "localhost:5006"], 5006)
    assert not [r for r in caplog.records if r.name == "bokehserver.origins"]


@pytest.mark.parametrize(
    "host, allowlist, allowed",
    [
        ("localhost:5006", ["localhost:5006"], True),
        ("localhost:5007", ["localhost:5006"], False),
        ("example.com", ["example.com:80"], True),
        ("example.com", ["example.com:443"], False),  # no port means :80, even for https
        ("example.com:8443", ["example.com"], True),  # a pattern without a port allows any
        ("a.example.com:80", ["*.example.com:80"], True),
        ("a.b.example.com:80", ["*.example.com:80"], False),
        ("anything:1", ["*"], True),
        ("anything:1", [], False),
    ],
)
def test_check_whitelist(host, allowlist, allowed):
    assert check_whitelist(host, allowlist) is allowed


def test_check_whitelist_accepts_any_iterable():
    assert check_whitelist("localhost:5006", {"localhost:5006"}) is True
    assert check_whitelist("localhost:5006", (h for h in ["localhost:5006"])) is True


def test_match_host_wildcard_port_matches_any_port():
    assert match_host("alice:1234", "alice:*") is True
    assert match_host("bob:1234", "alice:*") is False
