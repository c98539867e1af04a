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


@pytest.mark.parametrize(
    "allowed_hosts, trusted, debug, origin, host, ok",
    [
        (["example.com"], [], False, "http://example.com:8000", "example.com:8000", True),
        (["example.com"], [], False, "https://example.com", "example.com", True),
        (["example.com"], [], False, "http://example.com:5006", "example.com:8000", False),  # another port
        (["example.com"], [], False, "http://evil.com:8000", "evil.com:8000", False),  # DNS rebinding
        ([".example.org"], [], False, "https://www.example.org", "api.example.org", True),
        (["*"], [], False, "http://anything.net:8000", "127.0.0.1:8000", True),
        ([], [], True, "http://localhost:8000", "127.0.0.1:8000", True),  # DEBUG's local names
        ([], [], True, "http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ([], [], False, "http://127.0.0.1:8000", "127.0.0.1:8000", False),
        ([], ["https://embed.example.net"], False, "https://embed.example.net", "site.example.com", True),
        ([], ["https://*.example.net"], False, "https://a.b.example.net", "site.example.com", True),
        ([], ["https://*.example.net"], False, "http://a.example.net", "site.example.com", False),  # scheme
        (["example.com"], [], False, "http://example.com:8000", None, False),  # no Host header
    ],
)
def test_site_trusts_what_django_trusts(settings, allowed_hosts, trusted, debug, origin, host, ok):
    settings.ALLOWED_HOSTS, settings.CSRF_TRUSTED_ORIGINS, settings.DEBUG = allowed_hosts, trusted, debug
    assert origins.site_trusts_origin(origin, host) is ok


def test_settings_without_origins_trust_the_site(settings):
    from bokehserver.asgi import BokehASGI

    settings.BOKEHSERVER = {}
    assert BokehASGI.from_settings(applications={"/a": lambda doc: None}).websocket_origins is None
    settings.BOKEHSERVER = {"ALLOW_WEBSOCKET_ORIGIN": ["example.com"]}
    assert BokehASGI.from_settings(applications={"/a": lambda doc: None}).websocket_origins == {"example.com:80"}


def test_refusals_say_how_to_allow_an_origin_on_the_server_in_use():
    in_site = origins.refusal_reason("http://evil.example:8000", "site:8000", None, "BOKEHSERVER['ALLOW_WEBSOCKET_ORIGIN']")
    assert "ALLOWED_HOSTS" in in_site and "CSRF_TRUSTED_ORIGINS" in in_site and "--allow" not in in_site
    runbokeh = origins.refusal_reason("http://evil.example:8000", "site:8000", {"localhost:5006"},
                                      "runbokeh --allow-websocket-origin={host}")
    assert "runbokeh --allow-websocket-origin=evil.example:8000" in runbokeh and "localhost:5006" in runbokeh


async def _connect(ws, origin, host):
    comm = ws("/app", headers=[(b"origin", origin.encode()), (b"host", host.encode())])
    return await comm.connect(timeout=3.0)


async def test_by_default_a_page_of_the_site_on_the_requests_port_may_connect(settings, web_app, ws, bk, caplog):
    settings.ALLOWED_HOSTS = ["example.com"]
    web_app({"/app": bk.slider_doc}, extra_websocket_origins=None)
    assert await _connect(ws, "http://example.com:8000", "example.com:8000") == (True, "bokeh")
    with caplog.at_level(logging.WARNING, logger="bokehserver"):
        assert await _connect(ws, "http://example.com:5006", "example.com:8000") == (False, 4003)
    [refused] = [r.getMessage() for r in caplog.records if "Refusing" in r.getMessage()]
    assert "ALLOWED_HOSTS" in refused and "runbokeh" not in refused
