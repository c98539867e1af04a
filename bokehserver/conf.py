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
    # Extra "host[:port]" patterns allowed to open websockets; None means localhost:<port>.
    "ALLOW_WEBSOCKET_ORIGIN": None,
    # The port runbokeh serves on; also the port of the default origin allowlist.
    "PORT": 5006,
    # Secret used to sign session ids and tokens; None falls back to BOKEH_SECRET_KEY.
    "SECRET_KEY": None,
    # Sign session ids and tokens; None falls back to BOKEH_SIGN_SESSIONS.
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
    "WEBSOCKET_MAX_MESSAGE_SIZE": 20 * 1024 * 1024,
    # Serve the index of apps at the prefix root, and redirect there when only one app exists.
    "USE_INDEX": True,
    "REDIRECT_ROOT": True,
    # A Django template name for the index, instead of bokehserver/app_index.html.
    "INDEX_TEMPLATE": None,
    # Favicon file; "none" disables /favicon.ico.
    "ICO_PATH": None,
    # Django auth in front of apps: True for every app, or a list of app paths. Pages redirect
    # to settings.LOGIN_URL; autoload.js, metadata and websockets of anonymous users get 403/4003.
    "LOGIN_REQUIRED": False,
    # Threads that run synchronous app code (modify_doc, callbacks, hooks) off the event loop;
    # 0 runs it on the loop as bokeh serve does (faster, but no ORM or blocking calls in app code).
    "APP_CODE_THREADS": 32,
    # Speed shortcuts that replace internals of bokeh and autobahn with faster equivalents (model
    # building and serialization, whole-message websocket writes, autobahn's handshake config dump).
    # Each is used only on the versions it was proven on (docs/compatibility.md); False keeps the
    # dependencies' own code everywhere. Read when the app loads and when a server starts.
    "SPEED_SHORTCUTS": True,
    # Keep BokehSession records for the admin, written at most this often (0 turns them off).
    "RECORD_INTERVAL_MILLISECONDS": 1000,
    # Request data copied into the session token (bokeh serve --include/--exclude-*).
    "INCLUDE_HEADERS": None,
    "EXCLUDE_HEADERS": None,
    "INCLUDE_COOKIES": None,
    "EXCLUDE_COOKIES": None,
}


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
