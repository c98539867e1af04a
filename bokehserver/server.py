"""``Server``: serve Bokeh apps from Python with daphne, as ``bokeh.server.server.Server`` does with Tornado.

Why it is built the way it is:

- daphne runs on Twisted's asyncio reactor, and importing ``daphne.server`` installs that reactor
  bound to a new loop of its own. To serve inside a loop that already runs (``start()`` from a
  coroutine) the Server binds the reactor to that loop before daphne is imported, and re-binds a
  reactor whose loop is not running (daphne imported by ``INSTALLED_APPS``, a loop inherited over
  ``fork``; on proven versions only, ``_compat.reactor``), so one loop drives the whole process.
- daphne's ``run()`` ends in ``reactor.run()``, which blocks and owns signals. The Server does the
  same steps without it (``BokehDaphneServer.listen``) and ``startRunning(installSignalHandlers=False)``,
  so whoever runs the loop drives the reactor; ``run_until_shutdown()`` is that someone for scripts.
- Twisted reactors cannot restart, so ``stop()`` undoes what ``start()`` did (ports, connections,
  application instances, the web application and its hooks) and leaves the reactor running.
- The socket is bound in the constructor, as bokeh does: ``port`` is known at once (also for port 0)
  and a busy port fails there. With ``num_procs > 1`` the parent binds, forks and only supervises;
  each child adopts the socket, so the kernel balances connections, and builds a fresh loop and
  reactor, because an epoll selector inherited over ``fork`` would be shared with its siblings.
- A plain script has no Django project, so the Server configures the smallest Django that serves
  bokehserver's URLconf; a configured project keeps its own settings and URLconf.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import logging
import os
import signal
import socket
import sys
import threading
import webbrowser
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from . import registry
from ._compat.reactor import installed_reactor_loop, reactor_on
from .process import SHUTDOWN_SIGNALS, bind_socket, ensure_django, fork_workers
from .origins import create_hosts_allowlist
from .routing import site_asgi_application
from .server_options import (
    as_asyncio_loop,
    build_applications,
    check_num_procs,
    check_options,
    check_origins,
    check_port,
)

if TYPE_CHECKING:
    from .asgi import BokehASGI
    from .daphne_server import BokehDaphneServer
    from .session import ServerSession

logger = logging.getLogger(__name__)

__all__ = ("Server",)

DEFAULT_PORT = 5006

class ServerState(enum.Enum):
    CREATED = "created"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Server:
    """Serves Bokeh applications with daphne: a session per browser tab, a Document per session.

    Args:
        applications: a dict of URL path to app (an Application, a ``modify_doc(doc)`` function,
            or a script, notebook or directory path), or a single app served at ``/``.
        io_loop: the asyncio loop to serve on (a Tornado IOLoop's ``asyncio_loop`` is used);
            by default the running loop, else a new one that ``run_until_shutdown()`` runs.
        **kwargs: ``port`` (5006; 0 picks a free port), ``address`` (all interfaces),
            ``num_procs`` (1; 0 means one per CPU), ``prefix``, ``allow_websocket_origin``,
            ``websocket_max_message_size`` (bytes), and every keyword of
            :class:`~bokehserver.asgi.BokehASGI` (keep_alive_milliseconds, sign_sessions, ...),
            whose defaults come from ``settings.BOKEHSERVER`` and bokeh's environment
            variables, as under ``runbokeh``. Anything else is refused here, with the reason.

    With ``num_procs > 1`` the constructor forks: it returns in each child, while the parent
    only forwards SIGINT/SIGTERM to them and exits when they have all ended (as Tornado's
    ``fork_processes`` does under ``bokeh serve --num-procs``).
    """

    def __init__(self, applications: Any, io_loop: Any = None, **kwargs: Any) -> None:
        num_procs = check_num_procs(kwargs.pop("num_procs", 1))
        self._address: str | None = kwargs.pop("address", None)
        if self._address is not None and (not isinstance(self._address, str) or not self._address):
            raise ValueError(f"address must be a host name or IP address, got {self._address!r}")
        port = check_port(kwargs.pop("port", DEFAULT_PORT))
        if kwargs.get("prefix") is not None and not isinstance(kwargs["prefix"], str):
            raise ValueError(f"prefix must be a string, got {kwargs['prefix']!r}")
        origins = check_origins(kwargs.pop("allow_websocket_origin", None))
        max_size = kwargs.pop("websocket_max_message_size", None)
        if max_size is not None:
            if "websocket_max_message_size_bytes" in kwargs:
                raise TypeError("pass websocket_max_message_size or websocket_max_message_size_bytes, not both")
            kwargs["websocket_max_message_size_bytes"] = max_size
        options = check_options(kwargs)
        self._loop = as_asyncio_loop(io_loop)
        if num_procs != 1:
            if self._loop is not None:
                raise RuntimeError("num_procs > 1 cannot be combined with an explicit io_loop")
            if not hasattr(os, "fork"):
                raise RuntimeError("num_procs > 1 needs os.fork, which this platform lacks")
            if _running_loop() is not None:
                raise RuntimeError("num_procs > 1 forks, which cannot happen inside a running event loop")

        if ensure_django():
            for name in ("login_required", "record_interval_milliseconds"):
                if options.get(name):
                    raise ValueError(f"{name} needs a Django project (a database, auth); set DJANGO_SETTINGS_MODULE")
        from . import conf
        from .asgi import BokehASGI

        cfg = conf.get_config()
        argv = list(options.get("argv", cfg["APP_ARGV"]) or ())
        apps = build_applications(applications, argv)
        if num_procs != 1 and not all(app.safe_to_fork for app in apps.values()):
            raise RuntimeError("Cannot fork: an application has already run code (create the Server before using it)")
        self._socket: socket.socket | None = bind_socket(self._address, port)
        try:
            self._port: int = self._socket.getsockname()[1]
            allowed = create_hosts_allowlist(origins or cfg["ALLOW_WEBSOCKET_ORIGIN"], self._port)
            self._web_app = BokehASGI.from_settings(
                applications=apps, extra_websocket_origins=allowed, origin_hint="Server(allow_websocket_origin=['{host}'])", **options)
        except BaseException:
            self._socket.close()
            raise
        self._state = ServerState.CREATED
        self._daphne: BokehDaphneServer | None = None
        self._stopping: Any = None
        self._forked = False
        if num_procs > 1:
            self._fork(num_procs)

    def _fork(self, count: int) -> None:
        """Fork ``count`` children that return from here; the parent supervises them (restarting
        one that dies) and exits."""
        from django.db import connections

        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        fork_workers(count)
        self._forked = True

    @property
    def address(self) -> str | None:
        """The address given to listen on (None: all interfaces)."""
        return self._address

    @property
    def port(self) -> int:
        """The port listened on: the one the system picked when 0 was asked."""
        return self._port

    @property
    def prefix(self) -> str:
        return self._web_app.prefix

    @property
    def index(self) -> str | None:
        return self._web_app.index

    @property
    def web_application(self) -> BokehASGI:
        """The :class:`~bokehserver.asgi.BokehASGI` holding the apps, options and background jobs."""
        return self._web_app

    @property
    def io_loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop the server runs on (chosen on first use when none was given)."""
        return self._resolve_loop()

    def _resolve_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = _running_loop()
            if loop is None and not self._forked:
                loop = installed_reactor_loop()
                if loop is not None and (loop.is_closed() or loop.is_running()):
                    loop = None
            self._loop = loop or asyncio.new_event_loop()
        return self._loop

    def start(self) -> None:
        """Listen and start the background jobs; does not block.

        Inside a running loop the server serves from that loop at once; otherwise it serves once
        its loop runs (``run_until_shutdown()``, or ``server.io_loop.run_forever()``).
        """
        if self._state is not ServerState.CREATED:
            raise RuntimeError(f"Server already {self._state.value}; a Server starts once")
        loop = self._resolve_loop()
        running = _running_loop()
        if running is not None and running is not loop:
            raise RuntimeError("start() is called in a different event loop than the Server's io_loop")
        if running is None and loop.is_running():
            raise RuntimeError("start() must be called in the thread running the Server's io_loop")
        reactor = reactor_on(loop)
        from .daphne_server import BokehDaphneServer

        registry.install(self._web_app)
        assert self._socket is not None
        self._daphne = BokehDaphneServer(
            self._web_app,
            site_asgi_application(),
            address=self._address,
            port=self._port,
            signal_handlers=False,
            sockets=[self._socket],
        )
        try:
            self._daphne.listen()
        except BaseException:
            self._state = ServerState.STOPPED
            registry.uninstall(self._web_app)
            raise
        finally:
            self._close_socket()  # the reactor listens on its own duplicate
        if not reactor.running:
            reactor.startRunning(installSignalHandlers=False)
        self._state = ServerState.STARTED
        logger.info("Bokeh server listening on %s:%d (pid %d)", self._address or "0.0.0.0", self._port, os.getpid())

    def stop(self, wait: bool = True) -> Awaitable[None] | None:
        """Stop listening, close connections, destroy sessions (running their hooks), run ``on_server_unloaded``.

        Inside the running loop this returns a task to await; otherwise it runs the shutdown on
        the loop and returns when it is done.

        Args:
            wait: give websockets and background tasks a few seconds to end cleanly.
        """
        if self._state is ServerState.CREATED:
            self._close_socket()
            self._state = ServerState.STOPPED
            return None
        if self._state is ServerState.STOPPED:
            return None
        if self._stopping is None:
            self._state = ServerState.STOPPING
            self._stopping = self._submit(self._shutdown(wait))
        return self._finish(self._stopping, wait)

    async def _shutdown(self, wait: bool) -> None:
        try:
            assert self._daphne is not None
            await self._daphne.close(wait=wait)
        except Exception:
            logger.exception("Error while stopping the Bokeh server on port %d", self._port)
            raise
        finally:
            registry.uninstall(self._web_app)
            self._state = ServerState.STOPPED
            logger.info("Bokeh server on port %d stopped", self._port)

    def _submit(self, coro: Any) -> Any:
        """Run ``coro`` on the server's loop from wherever we are: a task, a thread future, or to completion."""
        loop = self._resolve_loop()
        if _running_loop() is loop:
            return loop.create_task(coro)
        if loop.is_running():
            return asyncio.run_coroutine_threadsafe(coro, loop)
        loop.run_until_complete(coro)
        return None

    def _finish(self, pending: Any, wait: bool) -> Awaitable[None] | None:
        if isinstance(pending, concurrent.futures.Future):
            if wait:
                pending.result()
            return None
        if isinstance(pending, asyncio.Task) and not pending.done() and _running_loop() is None:
            self._resolve_loop().run_until_complete(pending)
            return None
        return pending

    def unlisten(self) -> None:
        """Stop listening and drop open connections; the Server cannot serve again afterwards."""
        if self._daphne is None:
            self._close_socket()
            self._state = ServerState.STOPPED
            return
        loop = self._resolve_loop()
        if loop.is_running() and _running_loop() is not loop:
            loop.call_soon_threadsafe(self.unlisten)
            return
        self._daphne.stop_listening()
        self._daphne.close_connections(abort=True)

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def run_until_shutdown(self) -> None:
        """Serve until Ctrl-C or SIGTERM, then shut down in order (hooks run, sockets close) and return."""
        loop = self._resolve_loop()
        if loop.is_running():
            raise RuntimeError("run_until_shutdown() runs the loop itself; in a running loop, start() and await stop()")
        if self._state is ServerState.CREATED:
            self.start()

        handled: list[signal.Signals] = []

        def request_shutdown() -> None:
            if self._stopping is None and self._state is ServerState.STARTED:
                logger.info("Shutting down")
                task = self.stop()
                assert isinstance(task, asyncio.Task)
                task.add_done_callback(lambda _: loop.stop())
                return
            logger.warning("Still shutting down; signal again to stop waiting")
            for sig in handled:
                loop.remove_signal_handler(sig)
            handled.clear()

        if threading.current_thread() is threading.main_thread():
            for sig in SHUTDOWN_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, request_shutdown)
                    handled.append(sig)
        try:
            if self._state is ServerState.STARTED:
                loop.run_forever()
        except KeyboardInterrupt:
            logger.info("Interrupted, shutting down")
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
        self.stop()
        if isinstance(self._stopping, asyncio.Task) and self._stopping.done():
            self._stopping.result()  # a failed shutdown raises here

    def show(self, app_path: str, browser: str | None = None, new: str = "tab") -> None:
        """Open ``http://{address or localhost}:{port}{prefix}{app_path}`` in a browser.

        Args:
            app_path: the app's URL path, starting with ``/``.
            browser: a :mod:`webbrowser` browser name; ``"none"`` opens nothing.
            new: ``"tab"``, ``"window"`` or ``"same"``.
        """
        if not isinstance(app_path, str) or not app_path.startswith("/"):
            raise ValueError(f"app_path must start with a /, got {app_path!r}")
        modes = {"same": 0, "window": 1, "tab": 2}
        if new not in modes:
            raise ValueError(f"new must be one of {', '.join(modes)}, got {new!r}")
        url = f"http://{self._address or 'localhost'}:{self._port}{self.prefix}{app_path}"
        if browser == "none":
            return
        controller = webbrowser.get(browser) if browser else webbrowser.get()
        controller.open(url, new=modes[new])

    def get_session(self, app_path: str, session_id: str) -> ServerSession:
        """The live session ``session_id`` of the app at ``app_path``.

        Raises ValueError for an app path not served, ProtocolError for an unknown session.
        """
        return self._web_app.get_session(app_path, session_id)

    def get_sessions(self, app_path: str | None = None) -> list[ServerSession]:
        """The live sessions of one app, or of every app when ``app_path`` is None."""
        return self._web_app.get_sessions(app_path)

    def __repr__(self) -> str:
        return f"<Server {self._address or '0.0.0.0'}:{self._port}{self.prefix} {self._state.value}>"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
