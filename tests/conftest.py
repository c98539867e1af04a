"""Fixtures shared by the whole suite: free ports, optional services, a real runbokeh, headless Chromium."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from processes import kill_group

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
REQUIRE_SERVICES_ENV = "BOKEHSERVER_REQUIRE_SERVICES"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Variables that would change what the server subprocess serves or whom it lets in.
_SERVER_ENV_DROPPED = ("BOKEH_ALLOW_WS_ORIGIN", "BOKEH_RESOURCES", "BOKEH_DEV", "BOKEH_MINIFIED")
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Optional Python extras a test needs: required only where BOKEHSERVER_REQUIRE_SERVICES names them
# ("1,panel"), since "1" promises the machine's services (Chromium, Redis), not every extra.
OPTIONAL_EXTRAS = ("panel",)


def _service_missing(reason: str, name: str = "") -> NoReturn:
    """Skip the test, or fail it when CI promised the service (BOKEHSERVER_REQUIRE_SERVICES=1, or
    naming an optional extra: BOKEHSERVER_REQUIRE_SERVICES=1,panel)."""
    promised = [word.strip() for word in os.environ.get(REQUIRE_SERVICES_ENV, "").split(",")]
    if (name in promised) if name in OPTIONAL_EXTRAS else ("1" in promised):
        value = os.environ[REQUIRE_SERVICES_ENV]
        pytest.fail(f"{reason} ({REQUIRE_SERVICES_ENV}={value}, so a missing service is a failure)", pytrace=False)
    pytest.skip(reason)


def _find_chromium() -> str | None:
    explicit = os.environ.get("BOKEHSERVER_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def require_service(name: str) -> str:
    """Return how to reach the external service ``name``, or skip (CI: fail) saying what to install.

    ``"chromium"`` returns the browser executable, ``"redis"`` a ``redis://`` URL, ``"node"`` the
    Node.js executable, ``"panel"`` its name.
    """
    if name == "chromium":
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            _service_missing("the playwright package is missing: pip install -e '.[test]'")
        path = _find_chromium()
        if path is None:
            _service_missing(
                "Chromium is not installed: apt-get install chromium "
                "(or point BOKEHSERVER_CHROMIUM at a Chromium/Chrome executable)"
            )
        return path
    if name == "redis":
        if not _redis_answers(REDIS_HOST, REDIS_PORT):
            _service_missing(
                f"no Redis answers at {REDIS_HOST}:{REDIS_PORT}: apt-get install redis-server, then "
                f"redis-server --bind {REDIS_HOST} --port {REDIS_PORT} --save '' --daemonize yes"
            )
        return f"redis://{REDIS_HOST}:{REDIS_PORT}"
    if name == "node":
        path = shutil.which("node")
        if path is None:
            _service_missing("Node.js is not installed (bokeh compiles custom models' TypeScript with it): "
                             "apt-get install nodejs")
        return path
    if name == "panel":
        # found, not imported: Panel's models would join every page this process bundles
        if importlib.util.find_spec("panel") is None:
            _service_missing("Panel is not installed: pip install -e '.[panel]' (CI's panel combination has it)", name)
        return "panel"
    raise ValueError(f"unknown service {name!r}; known: 'chromium', 'redis', 'node', 'panel'")


@pytest.fixture(scope="session", autouse=True)
def _database_service() -> None:
    """With BOKEHSERVER_DATABASE_URL the suite runs on PostgreSQL: say so plainly when it does not answer."""
    url = os.environ.get("BOKEHSERVER_DATABASE_URL")
    if not url:
        return
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=3).close()
    except OSError as exc:
        _service_missing(f"no PostgreSQL answers at {parts.hostname}:{parts.port or 5432} ({exc}): "
                         "start it, or unset BOKEHSERVER_DATABASE_URL to test on SQLite")


@pytest.fixture(scope="session", name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """The :func:`free_port` helper, for test modules (which do not import conftest)."""
    return free_port


@pytest.fixture(scope="session", name="require_service")
def require_service_fixture() -> Callable[[str], str]:
    """The :func:`require_service` helper, for test modules."""
    return require_service


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``test-artifacts/`` at the repository root (gitignored): screenshots and such, for humans."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    return require_service("chromium")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("redis")


class E2ETimeout(BaseException):
    """Raised by :func:`hard_timeout`; a BaseException so that no ``except Exception`` swallows it."""


@pytest.fixture
def hard_timeout() -> Iterator[float]:
    """Abort a blocking test (e.g. a bokeh.client call the server never answers) after 180 s."""
    seconds = 180.0
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield seconds
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise E2ETimeout(f"test still blocked after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield seconds
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class ServerProcess:
    """A web server subprocess listening on 127.0.0.1:``port``, logging to a file."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        port: int,
        log_path: Path,
        cwd: Path = REPO_ROOT,
        env: dict[str, str] | None = None,
        ready_path: str = "/",
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.command = list(command)
        self.cwd = cwd
        self.ready_path = ready_path
        self._env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_DROPPED}
        self._env["PYTHONUNBUFFERED"] = "1"
        self._env.update(env or {})
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        """The ``host:port`` a browser on this server sends as its websocket Origin."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """Lines of the log that show the server in trouble: tracebacks, ERROR and CRITICAL records."""
        return [
            line for line in self.log_text().splitlines()
            if "Traceback" in line or re.search(r"\b(ERROR|CRITICAL)\b", line)
        ]

    def start(self, timeout: float = 120.0) -> None:
        """Start the process and return once ``ready_path`` answers 200; fail otherwise."""
        name = " ".join(Path(part).name for part in self.command[:3])
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.command)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready_url = f"http://127.0.0.1:{self.port}{self.ready_path}"
        deadline = time.monotonic() + timeout
        last_problem = "nothing listening yet"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(
                    f"{name} exited with code {self._proc.returncode} before serving "
                    f"{ready_url}\n--- server log ---\n{self.log_tail()}",
                    pytrace=False,
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                with _NO_PROXY_OPENER.open(ready_url, timeout=5) as response:
                    if response.status == 200:
                        return
                    last_problem = f"GET {ready_url} answered {response.status}"
            except urllib.error.HTTPError as exc:
                last_problem = f"GET {ready_url} answered {exc.code}"
            except OSError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"{name} did not serve {ready_url} within {timeout:.0f} s ({last_problem})\n"
            f"--- server log ---\n{self.log_tail()}",
            pytrace=False,
        )

    def send_signal(self, sig: int) -> None:
        assert self._proc is not None, "the server was not started"
        self._proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the process to exit on its own; return its exit code."""
        assert self._proc is not None, "the server was not started"
        return self._proc.wait(timeout=timeout)

    def stop(self) -> int | None:
        """Stop the process: SIGINT, then SIGTERM, then SIGKILL, each with a bounded wait."""
        proc = self._proc
        if proc is None:
            return None
        for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                with open(self.log_path, "ab") as log:
                    log.write(f"[conftest] still running {wait:.0f} s after {sig.name}\n".encode())
        kill_group(proc)  # workers it forked, should any outlive it
        return proc.returncode

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {' '.join(self.command[:3])} :{self.port} {state} log={self.log_path}>"


class BokehServerProcess(ServerProcess):
    """One ``manage.py runbokeh`` subprocess of the demo site, listening on 127.0.0.1."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        port: int,
        log_path: Path,
        database: Path,
        prefix: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        command = [sys.executable, "manage.py", "runbokeh", *args]
        if self.prefix:
            command += ["--prefix", self.prefix]
        command += ["--port", str(port), "--address", "127.0.0.1"]
        server_env = {"DJANGO_SETTINGS_MODULE": "project.settings", "BOKEHSERVER_DB": str(database), **(env or {})}
        super().__init__(command, port=port, log_path=log_path, env=server_env,
                         ready_path=f"{self.prefix}/static/js/bokeh.min.js")

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT[/prefix]``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def app_url(self, name: str) -> str:
        return f"{self.url}/{name.strip('/')}"


@pytest.fixture(scope="session", name="server_process")
def server_process_fixture() -> type[ServerProcess]:
    """The :class:`ServerProcess` class, for test modules that start servers of their own."""
    return ServerProcess


@pytest.fixture(scope="session")
def e2e_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file for the server subprocesses of this test run."""
    database = tmp_path_factory.mktemp("e2e-db") / "bokehserver.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_DROPPED}
    env.update(DJANGO_SETTINGS_MODULE="project.settings", BOKEHSERVER_DB=str(database))
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        pytest.fail(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return database


@pytest.fixture(scope="module")
def bokeh_server_factory(
    tmp_path_factory: pytest.TempPathFactory, e2e_database: Path
) -> Iterator[Callable[..., BokehServerProcess]]:
    """Start ``runbokeh`` servers that live until the end of the module.

    Call it as ``factory(*runbokeh_args, port=None, prefix="", env=None, timeout=120.0)``; it returns
    a started :class:`BokehServerProcess`. With no positional args the server serves the apps of
    ``project.settings`` (/sliders, /dirapp, /widgets).
    """
    servers: list[BokehServerProcess] = []
    log_dir = tmp_path_factory.mktemp("runbokeh-logs")

    def start(
        *args: str,
        port: int | None = None,
        prefix: str = "",
        env: dict[str, str] | None = None,
        timeout: float = 120.0,
    ) -> BokehServerProcess:
        port = port or free_port()
        server = BokehServerProcess(
            args,
            port=port,
            log_path=log_dir / f"runbokeh-{port}.log",
            database=e2e_database,
            prefix=prefix,
            env=env,
        )
        servers.append(server)
        server.start(timeout=timeout)
        return server

    yield start
    for server in servers:
        server.stop()


@dataclass
class ChromiumPage:
    """A fresh Playwright page and what its console said."""

    page: Any
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def chromium_browser(chromium_executable: str) -> Iterator[Any]:
    """A headless Chromium shared by one module (Playwright's sync API: use it from plain ``def`` tests)."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
    except Exception:
        playwright.stop()
        raise
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture
def chromium_page(chromium_browser: Any) -> Iterator[ChromiumPage]:
    """A page in its own browser context; console errors and uncaught exceptions land in ``.errors``."""
    context = chromium_browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    result = ChromiumPage(page=page)

    def on_console(message: Any) -> None:
        line = f"[{message.type}] {message.text} ({message.location.get('url', '')})"
        result.console.append(line)
        if message.type == "error":
            result.errors.append(line)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: result.errors.append(f"[pageerror] {exc}"))
    try:
        yield result
    finally:
        context.close()


@pytest.fixture(autouse=True)
def _close_database_connections_of_shared_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that used the database (async ORM, admin) leaves connections on asgiref's shared
    thread; close them so the next test, which may have no database access, does not inherit them."""
    yield
    if request.node.get_closest_marker("django_db") is None:
        return
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, attach the server log tail and the browser console of the test's fixtures."""
    report = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, ServerProcess):
                report.sections.append((f"server log ({name}, {value!r})", value.log_tail(80)))
            elif isinstance(value, ChromiumPage) and value.console:
                report.sections.append((f"browser console ({name})", "\n".join(value.console[-80:])))
    return report
