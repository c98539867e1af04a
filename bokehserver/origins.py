"""Which pages may open websockets: bokeh serve's allowlists, or what the Django site trusts."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from . import conf

logger = logging.getLogger(__name__)

__all__ = (
    "check_whitelist", "create_hosts_allowlist", "match_host", "refusal_reason", "site_allowed_hosts", "site_trusts_origin",
)


def check_whitelist(request_host: str, whitelist: Iterable[str]) -> bool:
    """Return whether ``request_host`` is allowed by any pattern of ``whitelist``.

    A host without a port is taken as port 80, as bokeh serve does.

    >>> check_whitelist('localhost:5006', ['localhost:5006'])
    True
    >>> check_whitelist('example.com', ['example.com:80'])
    True
    >>> check_whitelist('127.0.0.1:5006', ['localhost:5006'])
    False
    """
    if ":" not in request_host:
        request_host = request_host + ":80"
    whitelist = list(whitelist)
    if request_host in whitelist:
        return True
    return any(match_host(request_host, pattern) for pattern in whitelist)


def match_host(host: str, pattern: str) -> bool:
    """Match ``host`` against ``pattern``: ``*`` parts are wildcards, a missing port matches any.

    >>> match_host('192.168.0.1:80', '192.168.0.1:80')
    True
    >>> match_host('192.168.0.1:80', '192.168.0.1')
    True
    >>> match_host('192.168.0.1:80', '192.168.0.1:8080')
    False
    >>> match_host('192.168.0.1', '192.168.0.2')
    False
    >>> match_host('192.168.0.1', '192.168.*.*')
    True
    >>> match_host('alice', 'alice')
    True
    >>> match_host('alice:80', 'alice')
    True
    >>> match_host('alice', 'bob')
    False
    >>> match_host('foo.example.com', 'foo.example.com.net')
    False
    >>> match_host('alice', '*')
    True
    >>> match_host('alice', '*:*')
    True
    >>> match_host('alice:80', '*')
    True
    >>> match_host('alice:80', '*:80')
    True
    >>> match_host('alice:8080', '*:80')
    False
    """
    host_port = None
    if ":" in host:
        host, host_port = host.rsplit(":", 1)
    pattern_port = None
    if ":" in pattern:
        pattern, pattern_port = pattern.rsplit(":", 1)
        if pattern_port == "*":
            pattern_port = None
    if pattern_port is not None and host_port != pattern_port:
        return False
    if pattern == "*":
        return True
    host_parts = host.split(".")
    pattern_parts = pattern.split(".")
    if len(host_parts) != len(pattern_parts):
        return False
    return all(p == "*" or p == h for h, p in zip(host_parts, pattern_parts))


def create_hosts_allowlist(host_list: Iterable[str] | None, port: int | None) -> list[str]:
    """Normalise ``--allow-websocket-origin`` values; none given means ``localhost:<port>``.

    >>> create_hosts_allowlist(None, 5006)
    ['localhost:5006']
    >>> create_hosts_allowlist(['example.com', 'a.org:8080', '*'], 5006)
    ['example.com:80', 'a.org:8080', '*']
    """
    if not host_list:
        return [f"localhost:{port}" if port else "localhost"]
    hosts: list[str] = []
    for host in host_list:
        if "*" in host:
            logger.warning(
                "Host wildcard %r will allow connections originating from multiple "
                "(or possibly all) hostnames or IPs. Use non-wildcard values to restrict access explicitly",
                host,
            )
        if host == "*":
            hosts.append(host)
            continue
        parts = host.split(":")
        if len(parts) == 1:
            if not parts[0]:
                raise ValueError("Empty host value")
            hosts.append(host + ":80")
        elif len(parts) == 2:
            name, host_port = parts
            if not name:
                raise ValueError("Empty host value")
            if host_port != "*":
                try:
                    int(host_port)
                except ValueError:
                    raise ValueError(f"Invalid port in host value: {host}") from None
            hosts.append(host)
        else:
            raise ValueError(f"Invalid host value: {host}")
    return hosts


def site_allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS``, or with DEBUG and none set, the local names Django then accepts."""
    hosts = list(conf.site("ALLOWED_HOSTS"))
    if conf.site("DEBUG") and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def _trusted_origin(scheme: str, netloc: str) -> bool:
    """``CSRF_TRUSTED_ORIGINS``, as Django's CSRF check reads them (``https://*.example.com`` for subdomains)."""
    for trusted in conf.site("CSRF_TRUSTED_ORIGINS"):
        parts = urlsplit(trusted.lower())
        if parts.scheme != scheme:
            continue
        if "*" in parts.netloc:
            if is_same_domain(netloc, parts.netloc.lstrip("*")):
                return True
        elif parts.netloc == netloc:
            return True
    return False


def site_trusts_origin(origin: str, request_host: str | None) -> bool:
    """Whether the site trusts a page at ``origin`` to open a websocket that came to ``request_host``.

    Trusted: an origin in ``CSRF_TRUSTED_ORIGINS``, or one whose host ``ALLOWED_HOSTS`` allows on
    the port of the request's Host (the page the site itself served, or another of its hosts).

    >>> from django.test import override_settings
    >>> with override_settings(ALLOWED_HOSTS=["example.com", ".example.org"], CSRF_TRUSTED_ORIGINS=[]):
    ...     [site_trusts_origin(o, h) for o, h in [("http://example.com:8000", "example.com:8000"),
    ...      ("https://www.example.org", "example.org"), ("http://example.com:5006", "example.com:8000"),
    ...      ("http://evil.com:8000", "evil.com:8000")]]
    [True, True, False, False]
    """
    parts = urlsplit(origin.lower())
    if _trusted_origin(parts.scheme, parts.netloc):
        return True
    if not request_host:
        return False
    origin_domain, origin_port = split_domain_port(parts.netloc)
    _, request_port = split_domain_port(request_host.lower())
    return bool(origin_domain) and origin_port == request_port and validate_host(origin_domain, site_allowed_hosts())


def refusal_reason(origin: str, request_host: str | None, allowed: Iterable[str] | None, hint: str) -> str:
    """Why a page at ``origin`` may not open a websocket, and how to allow it (``hint``, with ``{host}``).

    ``allowed`` is the allowlist in force, None for the site's trusted origins.
    """
    host = urlsplit(origin.lower()).netloc or origin
    how = hint.format(host=host) if "{host}" in hint else f"{hint} (add {host})"
    if allowed is None:
        return (
            f"the site does not trust it: add its host to ALLOWED_HOSTS (pages on the port the request came to, "
            f"{request_host or 'unknown'}) or {origin} to CSRF_TRUSTED_ORIGINS, or allow it with {how}"
        )
    return f"allowed are {', '.join(sorted(allowed)) or 'none'}; allow it with {how}"
