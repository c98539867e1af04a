"""The Bokeh web application: apps, options and background jobs of one server process, as ASGI."""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urljoin, urlparse

from bokeh.application import Application
from bokeh.resources import Resources
from bokeh.settings import settings as bokeh_settings

from . import app_code, conf, control, dashboard, logins
from .access import AccessRules, signing
from .application_context import ApplicationContext
from .heap import freeze_startup_objects
from .layers import shared_layer
from .origins import check_whitelist, refusal_reason, site_trusts_origin
from .quotas import SessionQuotas
from .records import SessionRecords
from .registry import AppSpec, normalize_routes
from .relay import Relay
from .routing import bokeh_asgi_application
from .server_options import options_from_settings
from .session import ServerSession
from .static import append_version
from .worker import Worker

logger = logging.getLogger(__name__)

__all__ = ("BokehASGI", "bokeh_asgi_application")

DEFAULT_MAX_MESSAGE_SIZE = 20 * 1024 * 1024
DEFAULT_MAX_SEND_QUEUE = 32 * 1024 * 1024


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


class BokehASGI:
    """Holds the apps served at their URL paths, the server's options and its background jobs.

    Views and consumers find it through ``registry.get_web_application()``; calling it as an
    ASGI application routes websockets to the session consumer and HTTP to Django.
    """

    def __init__(
        self,
        applications: Mapping[str, AppSpec] | AppSpec,
        prefix: str | None = "",
        extra_websocket_origins: list[str] | None = None,
        extra_patterns: list[Any] | None = None,
        secret_key: str | bytes | None = None,
        sign_sessions: bool | None = False,
        generate_session_ids: bool = True,
        keep_alive_milliseconds: int = 37000,
        check_unused_sessions_milliseconds: int = 17000,
        unused_session_lifetime_milliseconds: int = 15000,
        stats_log_frequency_milliseconds: int = 15000,
        use_index: bool = True,
        redirect_root: bool = True,
        *,
        websocket_max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE,
        websocket_max_send_queue_bytes: int = DEFAULT_MAX_SEND_QUEUE,
        session_token_expiration: int = 300,
        index: str | None = None,
        ico_path: str | None = None,
        absolute_url: str | None = None,
        include_headers: list[str] | None = None,
        exclude_headers: list[str] | None = None,
        include_cookies: list[str] | None = None,
        exclude_cookies: list[str] | None = None,
        argv: list[str] | None = None,
        record_interval_milliseconds: int = 0,
        login_required: bool | list[str] = False,
        access: Mapping[str, Any] | None = None,
        login_check_milliseconds: int = 17000,
        app_code_threads: int | None = None,
        origin_hint: str = "BOKEHSERVER['ALLOW_WEBSOCKET_ORIGIN']",
    ) -> None:
        if not isinstance(applications, Mapping):
            applications = {"/": applications}
        self._applications = normalize_routes(applications, argv or ())
        prefix = (prefix or "").strip("/")
        self._prefix = f"/{prefix}" if prefix else ""
        self._websocket_origins = None if extra_websocket_origins is None else set(extra_websocket_origins)
        self.origin_hint = origin_hint
        self._extra_patterns = list(extra_patterns or ())
        self._extra_resolver: Any = None
        self.access = AccessRules(self._applications, access, login_required)
        if sign_sessions is None:
            sign_sessions, secret_key = signing(secret_key, restricted=self.access.restricted)
        if isinstance(secret_key, str):
            secret_key = secret_key.encode("utf-8")
        if sign_sessions and not secret_key:
            raise ValueError(
                "To sign sessions, a secret key must be set: BOKEHSERVER['SECRET_KEY'] or the BOKEH_SECRET_KEY environment variable"
            )
        self._secret_key = secret_key
        self._sign_sessions = bool(sign_sessions)
        self._generate_session_ids = bool(generate_session_ids)
        self.keep_alive_milliseconds = _positive("keep_alive_milliseconds", keep_alive_milliseconds, allow_zero=True)
        self.check_unused_sessions_milliseconds = _positive("check_unused_sessions_milliseconds", check_unused_sessions_milliseconds)
        self.unused_session_lifetime_milliseconds = _positive("unused_session_lifetime_milliseconds", unused_session_lifetime_milliseconds)
        self.stats_log_frequency_milliseconds = _positive("stats_log_frequency_milliseconds", stats_log_frequency_milliseconds)
        self.websocket_max_message_size_bytes = int(_positive("websocket_max_message_size_bytes", websocket_max_message_size_bytes))
        self.websocket_max_send_queue_bytes = int(_positive("websocket_max_send_queue_bytes", websocket_max_send_queue_bytes))
        self.session_token_expiration = int(_positive("session_token_expiration", session_token_expiration))
        self._use_index = bool(use_index)
        self._redirect_root = bool(redirect_root)
        self._index = index
        self._ico_path = ico_path
        self._absolute_url = absolute_url
        if include_headers is not None and exclude_headers is not None:
            raise ValueError("include_headers and exclude_headers are mutually exclusive")
        if include_cookies is not None and exclude_cookies is not None:
            raise ValueError("include_cookies and exclude_cookies are mutually exclusive")
        self.include_headers = include_headers
        self.exclude_headers = exclude_headers
        self.include_cookies = include_cookies
        self.exclude_cookies = exclude_cookies
        if app_code_threads is not None:
            app_code.use_threads(app_code_threads)
        self._worker = Worker()
        self._worker.add_job("cleanup-sessions", self.check_unused_sessions_milliseconds, self.cleanup_sessions)
        self._worker.add_job("stats-log", self.stats_log_frequency_milliseconds, self.log_stats)
        if login_check_milliseconds:
            self._worker.add_job("login-check", login_check_milliseconds,
                                 lambda: logins.check_logins(self._contexts.values()))
        self.records = SessionRecords() if record_interval_milliseconds else None
        if self.records is not None:
            self._worker.add_job("session-records", record_interval_milliseconds, self.records.flush)
        quotas = SessionQuotas()  # per user and address, across every app
        self._contexts = {
            route: ApplicationContext(app, url=route, worker=self._worker, records=self.records, quotas=quotas)
            for route, app in self._applications.items()
        }
        self.relay = Relay(self)
        self._started = False
        self._stopping = False
        self._asgi: Callable[..., Awaitable[None]] | None = None

    @classmethod
    def from_settings(cls, **overrides: Any) -> BokehASGI:
        """Build from ``settings.BOKEHSERVER`` (and bokeh's environment variables where unset)."""
        cfg = conf.get_config()
        options = options_from_settings(cfg)
        options.update(overrides)
        apps, options["access"] = dashboard.with_dashboard(options.pop("applications", cfg["APPS"]), options["access"])
        return cls(apps, **options)

    @property
    def applications(self) -> dict[str, Application]:
        return dict(self._applications)

    @property
    def app_paths(self) -> set[str]:
        return set(self._applications)

    @property
    def application_contexts(self) -> dict[str, ApplicationContext]:
        return dict(self._contexts)

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def websocket_origins(self) -> set[str] | None:
        """Allowed ``host:port`` patterns, or None for the site's trusted origins (see ``allows_origin``).

        ``BOKEH_ALLOW_WS_ORIGIN`` replaces them entirely, as under bokeh serve.
        """
        env = os.environ.get("BOKEH_ALLOW_WS_ORIGIN")
        if env:
            return {host.strip() for host in env.split(",") if host.strip()}
        return None if self._websocket_origins is None else set(self._websocket_origins)

    def allows_origin(self, origin: str, request_host: str | None) -> bool:
        """Whether a page at ``origin`` may open a websocket that came to ``request_host`` (its Host header)."""
        allowed = self.websocket_origins
        if allowed is None:
            return site_trusts_origin(origin, request_host)
        return check_whitelist(urlparse(origin).netloc.lower(), allowed)

    def origin_refusal(self, origin: str, request_host: str | None) -> str:
        """Why ``origin`` was refused and how to allow it, in the terms of the server in use."""
        hint = "BOKEH_ALLOW_WS_ORIGIN" if os.environ.get("BOKEH_ALLOW_WS_ORIGIN") else self.origin_hint
        return refusal_reason(origin, request_host, self.websocket_origins, hint)

    @property
    def secret_key(self) -> bytes | None:
        return self._secret_key

    @property
    def sign_sessions(self) -> bool:
        return self._sign_sessions

    @property
    def generate_session_ids(self) -> bool:
        return self._generate_session_ids

    @property
    def use_index(self) -> bool:
        return self._use_index

    @property
    def redirect_root(self) -> bool:
        return self._redirect_root

    @property
    def index(self) -> str | None:
        return self._index

    @property
    def ico_path(self) -> str | None:
        return self._ico_path

    @property
    def worker(self) -> Worker:
        return self._worker

    @property
    def started(self) -> bool:
        return self._started

    @property
    def extra_patterns(self) -> list[Any]:
        return list(self._extra_patterns)

    def resolve_extra(self, path: str) -> Any:
        """Match ``path`` (after the prefix) against ``extra_patterns`` (Django ``path``/``re_path``)."""
        if not self._extra_patterns:
            return None
        if self._extra_resolver is None:
            from django.urls.resolvers import RegexPattern, URLResolver

            self._extra_resolver = URLResolver(RegexPattern(r"^/"), self._extra_patterns)
        from django.urls import Resolver404

        try:
            return self._extra_resolver.resolve(path)
        except Resolver404:
            return None

    def route_for(self, url_path: str | None) -> str | None:
        """The app route ("/name" or "/") a URL path names under the prefix, or None outside it."""
        full = "/" + (url_path or "").strip("/")
        prefix = self._prefix
        if prefix:
            if full != prefix and not full.startswith(prefix + "/"):
                return None
            full = full[len(prefix):] or "/"
        return full

    def context_for(self, app_path: str) -> ApplicationContext | None:
        """The context serving ``app_path`` ("" and "/" both name the root app)."""
        return self._contexts.get(app_path or "/")

    def resources(self, absolute_url: str | None = None) -> Resources:
        """Where pages load BokehJS from: this server's static URLs unless BOKEH_RESOURCES says otherwise."""
        mode = bokeh_settings.resources(default="server")
        if mode in ("server", "server-dev"):
            root_url = urljoin(absolute_url or "/", self._prefix)
            return Resources(mode=mode, root_url=root_url, path_versioner=append_version)
        return Resources(mode=mode)

    def get_session(self, app_path: str, session_id: str) -> ServerSession:
        context = self.context_for(app_path)
        if context is None:
            raise ValueError(f"Application {app_path} does not exist on this server")
        return context.get_session(session_id)

    def get_sessions(self, app_path: str | None = None) -> list[ServerSession]:
        if app_path is not None:
            context = self.context_for(app_path)
            if context is None:
                raise ValueError(f"Application {app_path} does not exist on this server")
            return context.sessions
        return [s for context in self._contexts.values() for s in context.sessions]

    def start(self) -> None:
        """Start the background jobs and run ``on_server_loaded``; needs the running loop."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        freeze_startup_objects()
        self._worker.start()
        if self.records is not None:
            self._worker.spawn(self.records.close_orphans(), name="session-records-orphans")
        if self.records is not None or shared_layer() is not None:  # admin actions; broadcasts
            self._worker.spawn(control.listen(self), name="control-listener")
        self.relay.start()
        for context in self._contexts.values():
            self._worker.spawn(context.run_load_hook(), name=f"on_server_loaded {context.url}")

    def ensure_started(self) -> None:
        """Start on first use; a web application that is stopping is not started again."""
        if not self._started and not self._stopping:
            self.start()

    @property
    def stopping(self) -> bool:
        """True from ``begin_stop()`` (or ``stop()``) on: requests and websockets are refused."""
        return self._stopping

    def begin_stop(self) -> None:
        """Refuse new requests and websockets from now on (a shutdown has begun)."""
        self._stopping = True

    async def stop(self, wait: bool = True) -> None:
        """Destroy every session (running its hooks), run ``on_server_unloaded``, stop every task.

        With ``wait`` the remaining tasks get up to 5 s to finish after being cancelled.
        """
        self._stopping = True
        if not self._started:
            return
        self._started = False
        await self.relay.stop()
        for context in self._contexts.values():
            await context.discard_all_sessions()
            await context.run_unload_hook()
        if self.records is not None:
            await self.records.flush_all(timeout=5.0 if wait else 0.0)
        await self._worker.stop(timeout=5.0 if wait else 0.0)

    async def expire_session(self, app_path: str, session_id: str, reason: str = "ended by the server",
                             status: str = "ended") -> bool:
        """End a session for good (its pages show ``reason``, its hooks run); False if not here."""
        context = self.context_for(app_path)
        session = context.find_session(session_id) if context is not None else None
        if session is None:
            return False
        return await context.end_session(session, reason, status)

    async def end_login_sessions(self, digest: str, reason: str) -> int:
        """End every session that came with the Django login whose key has this ``login_digest``."""
        return await logins.end_login_sessions(self._contexts.values(), digest, reason)

    async def cleanup_sessions(self) -> None:
        for context in list(self._contexts.values()):
            discarded = await context.cleanup_sessions(self.unused_session_lifetime_milliseconds)
            if discarded:
                logger.debug("Discarded %d unused sessions of %s", discarded, context.url)

    def log_stats(self) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        pid = os.getpid()
        connections = sum(s.connection_count for s in self.get_sessions())
        logger.debug("[pid %d] %d clients connected", pid, connections)
        for route, context in self._contexts.items():
            sessions = context.sessions
            unused = sum(1 for s in sessions if s.connection_count == 0)
            logger.debug("[pid %d]   %s has %d sessions with %d unused", pid, route, len(sessions), unused)

    async def run_in_background(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking function in a thread without stalling the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: func(*args, **kwargs))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._asgi is None:
            from .routing import site_asgi_application

            self._asgi = site_asgi_application()
        await self._asgi(scope, receive, send)

