"""bokehserver's settings: one cached accessor over ``settings.BOKEHSERVER``.

Every key has a documented default, bokeh serve's own where it has one. Nothing else in the
package reads ``django.conf.settings`` for these keys; the cache is dropped on Django's
``setting_changed`` signal so ``override_settings`` works in tests.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # URL path -> app: a script/notebook/directory path, a dotted "module:callable"
    # modify_doc, a callable, or a bokeh Application.
    "APPS": {},
    # Arguments handed to every app as sys.argv[1:] (bokeh serve --args).
    "APP_ARGV": [],
    # Prefix of every Bokeh URL, e.g. "/bokeh" (bokeh serve --prefix).
    "PREFIX": "",
    # "host[:port]" patterns of the pages allowed to open websockets, as bokeh serve's
    # --allow-websocket-origin: "example.com" is example.com on the default port (pages at
    # http://example.com and https://example.com), "example.com:*" any port, "*" any host.
    # None trusts what the site trusts: the host and port the request came to, ALLOWED_HOSTS
    # on that port, and CSRF_TRUSTED_ORIGINS.
    "ALLOW_WEBSOCKET_ORIGIN": None,
    # The port runbokeh serves on.
    "PORT": 5006,
    # Secret used to sign session ids and tokens; None falls back to BOKEH_SECRET_KEY.
    "SECRET_KEY": None,
    # Sign session ids and tokens; None: BOKEH_SIGN_SESSIONS if set, else signed exactly when an app
    # needs a user (ACCESS, LOGIN_REQUIRED), with SECRET_KEY or else the site's own SECRET_KEY.
    "SIGN_SESSIONS": None,
    # Create a session id when a page request brings none (off for external-signed ids).
    "GENERATE_SESSION_IDS": True,
    # Seconds a token stays valid for opening a websocket.
    "SESSION_TOKEN_EXPIRATION": 300,
    "KEEP_ALIVE_MILLISECONDS": 37000,
    "CHECK_UNUSED_SESSIONS_MILLISECONDS": 17000,
    "UNUSED_SESSION_LIFETIME_MILLISECONDS": 15000,
    "STATS_LOG_FREQUENCY_MILLISECONDS": 15000,
    # Largest inbound websocket message (one Bokeh fragment), as bokeh serve: 20 MiB.
    # Counts every frame of one message, its buffers too: a message in progress cannot grow past it.
    "WEBSOCKET_MAX_MESSAGE_SIZE": 20 * 1024 * 1024,
    # Bytes sent to one websocket that its client may leave unread; past it the socket is closed
    # (4008) and its session detached. A single message bigger than this is still sent whole.
    "WEBSOCKET_MAX_SEND_QUEUE": 32 * 1024 * 1024,
    # Limits against one client taking the server (None turns one off). Past each, a clear refusal:
    # HTTP 503 or websocket close 4029 with the reason, and a warning in the log.
    # Live sessions of one app in this process.
    "MAX_SESSIONS_PER_APP": 10000,
    # Live sessions of one logged-in user in this process, across apps (a page or a tab opens one;
    # a closed one counts until it expires, UNUSED_SESSION_LIFETIME_MILLISECONDS later).
    "MAX_SESSIONS_PER_USER": 200,
    # Live sessions made from one client address in this process, across apps. Off by default for
    # the reason MAX_HANDSHAKES_PER_SECOND is: behind a proxy or a NAT many users share an address.
    "MAX_SESSIONS_PER_ADDRESS": None,
    # Websockets attached to one session at once (a page opens one; each tab of it another).
    "MAX_CONNECTIONS_PER_SESSION": 32,
    # Websocket handshakes one client address may make per second (a burst of as many is allowed).
    # Off by default: behind a proxy every client has the proxy's address, and an office behind
    # one NAT address opens many. Set it (e.g. 20) where the server sees real client addresses.
    "MAX_HANDSHAKES_PER_SECOND": None,
    # HTTP requests one connection may send in a row before the answers to earlier ones (HTTP/1.1
    # pipelining, which browsers never do); past it the connection gets 503 and is closed (runbokeh,
    # Server). One client writing thousands of requests at once would otherwise hold a share of the loop.
    "MAX_PIPELINED_REQUESTS": 16,
    # Models a client's PUSH-DOC or PATCH-DOC may make the document hold (refused with ERROR).
    "MAX_DOCUMENT_MODELS": 100_000,
    # Serve the index of apps at the prefix root, and redirect there when only one app exists.
    "USE_INDEX": True,
    "REDIRECT_ROOT": True,
    # A Django template name for the index, instead of bokehserver/app_index.html.
    "INDEX_TEMPLATE": None,
    # App pages and autoload.js may be shown in a frame of another page, as bokeh serve's are
    # (they are exempt from XFrameOptionsMiddleware). False leaves them to the site's
    # X_FRAME_OPTIONS like every other page; the site's own pages always are.
    "FRAME_APP_PAGES": True,
    # Favicon file; "none" disables /favicon.ico.
    "ICO_PATH": None,
    # Django auth in front of apps: True for every app, or a list of app paths (shorthand for
    # ACCESS rules of "login"). Pages redirect to settings.LOGIN_URL; autoload.js shows the refusal
    # in the page; metadata answers 403 and websockets close with 4003.
    "LOGIN_REQUIRED": False,
    # App path -> who may open it: "public", "login", "perm:app_label.codename[,...]", a callable
    # taking the request (sync or async) or its dotted "module:callable". Unlisted apps follow
    # LOGIN_REQUIRED. A session belongs to the user who opened it, whatever the rule.
    "ACCESS": {},
    # How often live sessions of logged-in users are checked against their Django login (logged
    # out elsewhere, login expired, user deactivated); such sessions are ended. 0 turns it off.
    "LOGIN_CHECK_MILLISECONDS": 17000,
    # Threads that run synchronous app code (modify_doc, callbacks, hooks) off the event loop;
    # 0 runs it on the loop as bokeh serve does (faster, but no ORM or blocking calls in app code).
    "APP_CODE_THREADS": 32,
    # Where runbokeh's processes run (Linux; see bokehserver/core_placement.py): "auto" keeps each
    # process's threads on one CPU core while that core has room (less CPU per callback: the loop and
    # the app-code threads hand the GIL over without waking another core) and spreads them when other
    # processes crowd it or the app uses more than a core; True one fixed core per process
    # (runbokeh --pin-cores); False leaves them to the kernel (runbokeh --no-pin-cores).
    "PIN_CORES": "auto",
    # Speed shortcuts that replace internals of bokeh and autobahn with faster equivalents (model
    # building, validation and serialization, whole-message websocket writes, autobahn's handshake config dump).
    # Each is used only on the versions it was proven on (docs/compatibility.md); False keeps the
    # dependencies' own code everywhere. Read when the app loads and when a server starts.
    "SPEED_SHORTCUTS": True,
    # Keep BokehSession records for the admin, written at most this often (0 turns them off).
    "RECORD_INTERVAL_MILLISECONDS": 1000,
    # Each process refreshes its live records this often (a heartbeat, with the record writes);
    # records missing three heartbeats belong to a process that is gone: shown as ended, and
    # marked ended by any process that still runs.
    "RECORD_HEARTBEAT_MILLISECONDS": 10000,
    # More than one process (runbokeh --num-procs, or several hosts) on a Redis channel layer: a
    # websocket reaching a process other than its session's owner is relayed to the owner over the
    # layer. How long to wait for the owner to take the socket before building a fresh session
    # here (the owner is gone), how often relaying processes check that the owners of their
    # sockets still answer (one that misses three checks is gone: its sockets close with 4012), and
    # the largest Bokeh message relayed (larger ones close the socket with 4009).
    "RELAY_OPEN_TIMEOUT_MILLISECONDS": 5000,
    "RELAY_PING_MILLISECONDS": 5000,
    "RELAY_MAX_MESSAGE_SIZE": 20 * 1024 * 1024,
    # Records of sessions that ended longer ago than this are deleted (by the heartbeat); None keeps them.
    "RECORD_RETENTION_SECONDS": 7 * 24 * 3600,
    # Where the admin's live dashboard (a Bokeh app of bokehserver's own, for staff with view
    # permission on Bokeh sessions) is served, e.g. "/bokehserver-dashboard"; None: no dashboard.
    "DASHBOARD_PATH": None,
    # Request data copied into the session token (bokeh serve --include/--exclude-*).
    "INCLUDE_HEADERS": None,
    "EXCLUDE_HEADERS": None,
    "INCLUDE_COOKIES": None,
    "EXCLUDE_COOKIES": None,
}


# Django's own settings that bokehserver follows, with Django's defaults; read through ``site()``.
SITE_DEFAULTS: dict[str, Any] = {
    "DEBUG": False,
    "ALLOWED_HOSTS": [],
    "CSRF_TRUSTED_ORIGINS": [],
    "STATIC_URL": None,
    "ASGI_APPLICATION": None,
    "STATICFILES_FINDERS": [
        "django.contrib.staticfiles.finders.FileSystemFinder",
        "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    ],
}


def site(name: str) -> Any:
    """One of Django's settings in ``SITE_DEFAULTS`` (not cached: ``override_settings`` applies at once)."""
    return getattr(django_settings, name, SITE_DEFAULTS[name])


@lru_cache(maxsize=None)
def get_config() -> dict[str, Any]:
    """Return the merged settings, cached until a ``setting_changed`` for BOKEHSERVER."""
    user = getattr(django_settings, "BOKEHSERVER", {}) or {}
    unknown = set(user) - set(DEFAULTS)
    config = {**DEFAULTS, **user}
    config["_unknown"] = sorted(unknown)
    return config


def get(key: str) -> Any:
    return get_config()[key]


def reset(*, setting: str | None = None, **kwargs: Any) -> None:
    """Drop the cache; connected to ``setting_changed`` in the app config."""
    if setting in (None, "BOKEHSERVER"):
        get_config.cache_clear()
