"""``manage.py runbokeh``: serve Bokeh apps the way ``bokeh serve`` does, with daphne."""
from __future__ import annotations

import glob
import logging
import os
import webbrowser
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError

from bokehserver import conf, logs
from bokehserver.management.serve_options import add_replaced_options
from bokehserver.origins import create_hosts_allowlist
from bokehserver.registry import AppSpecError, routes_for_paths
from bokehserver.urls import app_url_path

if TYPE_CHECKING:
    from bokehserver.core_placement import CorePlacement

logger = logging.getLogger(__name__)

SESSION_ID_MODES = ("unsigned", "signed", "external-signed")


class Command(BaseCommand):
    help = "Serve Bokeh applications (scripts, notebooks, directories, or BOKEHSERVER['APPS']) with daphne."

    @property
    def server_class(self) -> Any:
        from bokehserver.daphne_server import BokehDaphneServer

        return BokehDaphneServer

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("files", nargs="*", metavar="DIRECTORY-OR-SCRIPT",
                            help="Apps to serve; none means the apps in BOKEHSERVER['APPS']")
        parser.add_argument("--port", type=int, default=None, help="Port to listen on (default 5006; 0 picks one)")
        parser.add_argument("--address", default=None, help="Address to listen on (default: all interfaces)")
        parser.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                            help="Host of pages allowed to open websockets (repeatable; default: the site's "
                                 "ALLOWED_HOSTS on the port the page came from, and CSRF_TRUSTED_ORIGINS)")
        parser.add_argument("--prefix", default=None, help="URL prefix for every Bokeh URL")
        parser.add_argument("--session-ids", choices=SESSION_ID_MODES, default=None,
                            help="unsigned, signed, or external-signed session ids")
        parser.add_argument("--keep-alive", type=int, default=None, metavar="MS",
                            help="Milliseconds between websocket pings (0 disables; default 37000)")
        parser.add_argument("--check-unused-sessions", type=int, default=None, metavar="MS",
                            help="Milliseconds between checks for unused sessions (default 17000)")
        parser.add_argument("--unused-session-lifetime", type=int, default=None, metavar="MS",
                            help="Milliseconds an unused session lives (default 15000)")
        parser.add_argument("--stats-log-frequency", type=int, default=None, metavar="MS",
                            help="Milliseconds between stats log lines (default 15000)")
        parser.add_argument("--session-token-expiration", type=int, default=None, metavar="S",
                            help="Seconds a session token stays valid (default 300)")
        parser.add_argument("--websocket-max-message-size", type=int, default=None, metavar="BYTES",
                            help="Largest websocket message accepted (default 20 MiB)")
        parser.add_argument("--websocket-max-send-queue", type=int, default=None, metavar="BYTES",
                            help="Bytes a websocket client may leave unread before it is closed (default 32 MiB)")
        parser.add_argument("--app-code-threads", type=int, default=None, metavar="N",
                            help="Threads running synchronous app code (default 32; 0 runs it on the event loop)")
        parser.add_argument("--num-procs", type=int, default=1, metavar="N",
                            help="Worker processes sharing the port (0: one per CPU; more than 1 needs a "
                                 "Redis channel layer); a worker that dies is replaced")
        placement = parser.add_mutually_exclusive_group()
        placement.add_argument("--pin-cores", dest="pin_cores", action="store_const", const=True, default=None,
                               help="Keep each worker process on a CPU core of its own for its life (default: "
                                    "on one core while it has room, moving when other work crowds it)")
        placement.add_argument("--no-pin-cores", dest="pin_cores", action="store_const", const=False,
                               help="Let the kernel place the threads of each process on any core")
        parser.add_argument("--index", default=None, help="Django template for the index page")
        parser.add_argument("--disable-index", action="store_true", help="Serve no index of apps at /")
        parser.add_argument("--disable-index-redirect", action="store_true",
                            help="Show the index even when only one app is served")
        parser.add_argument("--ico-path", default=None, help="Favicon file, or 'none'")
        parser.add_argument("--show", action="store_true", help="Open each app in a browser")
        parser.add_argument("--glob", action="store_true", help="Expand the file arguments as glob patterns")
        parser.add_argument("--log-level", choices=logs.LOG_LEVELS, default=None,
                            help="Log level of bokehserver and bokeh (default: the site's LOGGING, else info)")
        parser.add_argument("--log-format", default=None, metavar="FORMAT",
                            help=f"logging format of the server's log lines (default: the site's LOGGING, else "
                                 f"{logs.DEFAULT_FORMAT.replace('%', '%%')!r})")
        parser.add_argument("--log-file", default=None, metavar="PATH", help="Also write the log to this file")
        parser.add_argument("--args", dest="app_args", nargs="...", default=[], metavar="...",
                            help="Arguments handed to every app as sys.argv[1:] (must come last)")
        add_replaced_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        logs.configure(options["log_level"], options["log_format"], options["log_file"])
        cfg = conf.get_config()
        port = options["port"] if options["port"] is not None else cfg["PORT"]
        num_procs = self.check_num_procs(options["num_procs"])
        placement_mode = cfg["PIN_CORES"] if options["pin_cores"] is None else options["pin_cores"]
        placement = self.placement(placement_mode)  # its first look at the cores: the app loading is the interval
        web_app = self.build_web_application(options, port)
        address = options["address"]
        sockets: list[Any] = []
        first, index = True, 0
        if num_procs > 1:
            sockets, index = self.fork(num_procs, address, port)
            first = index == 0
        self.place(placement_mode, placement, index if num_procs > 1 else None)
        from bokehserver import registry
        from bokehserver.routing import site_asgi_application
        from bokehserver.staticfiles import serve_static_files

        registry.install(web_app)
        asgi_app = serve_static_files(site_asgi_application())

        def on_listen(host: str, actual_port: int) -> None:
            if not first:
                return
            shown = address or "localhost"
            for route in sorted(web_app.app_paths):
                url = f"http://{shown}:{actual_port}{app_url_path(web_app.prefix, route)}"
                self.stdout.write(f"Bokeh app running at: {url}")
                if options["show"]:
                    webbrowser.open(url, new=2)
            self.stdout.flush()

        server = self.server_class(web_app, asgi_app, address=address, port=port, on_listen=on_listen,
                                   **({"sockets": sockets} if sockets else {}))
        self.stdout.write(f"Starting bokehserver with process id: {os.getpid()}")
        if placement is not None:
            self.watch(placement)
        server.run()
        logger.info("Bokeh server process %d exits", os.getpid())
        if getattr(server, "listen_failure", None):
            raise CommandError(f"could not listen on {address or '0.0.0.0'}:{port}: {server.listen_failure}")

    def check_num_procs(self, value: int) -> int:
        from bokehserver.layers import LayerNotShared, require_shared_layer
        from bokehserver.server_options import check_num_procs

        try:
            num_procs = check_num_procs(value)
            require_shared_layer(num_procs)
        except (ValueError, LayerNotShared) as exc:
            raise CommandError(str(exc).replace("num_procs", "--num-procs")) from None
        if num_procs > 1 and not hasattr(os, "fork"):
            raise CommandError("--num-procs > 1 needs os.fork, which this platform lacks")
        return num_procs

    def placement(self, mode: Any) -> CorePlacement | None:
        """The watch over this process's cores for ``PIN_CORES = "auto"`` (None for the other modes, or where it cannot place)."""
        from bokehserver.core_placement import CorePlacement, can_place

        if mode is not True and mode is not False and mode != "auto":
            raise CommandError(f"BOKEHSERVER['PIN_CORES'] must be \"auto\", True or False, got {mode!r}")
        if mode != "auto":
            return None
        if not can_place():
            logger.debug("This platform cannot place threads on cores: the kernel places them")
            return None
        return CorePlacement()

    def place(self, mode: Any, placement: CorePlacement | None, worker: int | None) -> None:
        """Put this process on one core: its own for good (``--pin-cores``), or watched (``"auto"``)."""
        from bokehserver.core_placement import pin_to_core

        if mode is True:
            try:
                core = pin_to_core(worker or 0)
            except OSError as exc:
                raise CommandError(f"--pin-cores: {exc}") from None
            logger.info("Process %d runs on CPU core %d only (--pin-cores)", os.getpid(), core)
        elif placement is not None:
            placement.begin(worker)

    def watch(self, placement: CorePlacement) -> None:
        """Have the server's loop check the placement while it runs."""
        from bokehserver._compat.reactor import installed_reactor_loop

        loop = installed_reactor_loop()
        if loop is None:
            logger.debug("No asyncio reactor to watch CPU cores from: the kernel places the threads")
            placement.stop(spread=True)
            return
        placement.watch(loop)

    def fork(self, num_procs: int, address: str | None, port: int) -> tuple[list[Any], int]:
        """Bind the port, fork the workers; in each worker, return its socket and its index (0 for the first).

        Each worker drives Twisted's reactor from a loop of its own: one inherited over fork
        would share its epoll selector with the other workers.
        """
        import asyncio
        import sys

        from django.db import connections

        from bokehserver._compat.reactor import reactor_on
        from bokehserver.process import bind_socket, fork_workers

        try:
            sock = bind_socket(address, port)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Starting {num_procs} bokehserver processes, supervised by process id: {os.getpid()}")
        self.stdout.flush()
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        index = fork_workers(num_procs)
        reactor_on(asyncio.new_event_loop())
        return [sock], index

    def build_web_application(self, options: dict[str, Any], port: int) -> Any:
        from bokehserver.asgi import BokehASGI

        cfg = conf.get_config()
        overrides: dict[str, Any] = {}
        files = list(options["files"])
        if options["glob"]:
            files = [match for pattern in files for match in sorted(glob.glob(pattern))] or files
        argv = list(options["app_args"] or cfg["APP_ARGV"])
        overrides["argv"] = argv
        try:
            if files:
                overrides["applications"] = routes_for_paths(files, argv)
            origins = options["allow_websocket_origin"] or cfg["ALLOW_WEBSOCKET_ORIGIN"]
            overrides["extra_websocket_origins"] = create_hosts_allowlist(origins, port) if origins else None
            overrides["origin_hint"] = "runbokeh --allow-websocket-origin={host}"
        except (AppSpecError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for option, key in (
            ("prefix", "prefix"),
            ("keep_alive", "keep_alive_milliseconds"),
            ("check_unused_sessions", "check_unused_sessions_milliseconds"),
            ("unused_session_lifetime", "unused_session_lifetime_milliseconds"),
            ("stats_log_frequency", "stats_log_frequency_milliseconds"),
            ("session_token_expiration", "session_token_expiration"),
            ("websocket_max_message_size", "websocket_max_message_size_bytes"),
            ("websocket_max_send_queue", "websocket_max_send_queue_bytes"),
            ("index", "index"),
            ("ico_path", "ico_path"),
            ("app_code_threads", "app_code_threads"),
        ):
            if options[option] is not None:
                overrides[key] = options[option]
        if options["disable_index"]:
            overrides["use_index"] = False
        if options["disable_index_redirect"]:
            overrides["redirect_root"] = False
        mode = options["session_ids"]
        if mode is not None:
            overrides["sign_sessions"] = mode != "unsigned"
            overrides["generate_session_ids"] = mode != "external-signed"
        try:
            return BokehASGI.from_settings(**overrides)
        except (AppSpecError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
