"""Start the servers a benchmark compares, on free ports of 127.0.0.1, and stop them afterwards.

Server kinds:
- ``"bokehserver"``: ``manage.py runbokeh`` (this project, daphne);
- ``"bokehserver-loop"``: the same with ``--app-code-threads 0`` (sync app code on the event loop, as
  bokeh serve runs it);
  ``BENCH_RUNBOKEH_ARGS`` adds runbokeh options to both (e.g. ``"--app-code-threads 4"``);
- ``"bokeh serve"``: bokeh's own Tornado server;
- ``"bokeh-django"`` (optional): the bokeh-django package's Channels consumers served by daphne, through the
  tiny site in ``bench/bokeh_django_site``. It runs in its own environment, never this project's venv: the
  interpreter named by ``BOKEH_DJANGO_PYTHON``, else ``/tmp/bokeh-django-venv/bin/python``, else this one if
  it can import ``bokeh_django``. Make that environment with::

      python -m venv /tmp/bokeh-django-venv
      /tmp/bokeh-django-venv/bin/pip install bokeh==3.9.2 bokeh-django channels daphne numpy
"""
from __future__ import annotations

import contextlib
import functools
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
OUR_KINDS = ("bokehserver", "bokehserver-loop")


def server_root() -> Path:
    """Where ``"bokehserver"`` runs from: this checkout, or the tree named by ``BENCH_SERVER_ROOT``.

    Pointing it at a snapshot (``git archive HEAD | tar -x -C DIR``) keeps a long benchmark away from
    edits being made to this working tree meanwhile.
    """
    return Path(os.environ.get("BENCH_SERVER_ROOT") or ROOT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    name: str
    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout} s:\n{log_path.read_text()[-3000:]}")


BOKEH_DJANGO_VENV_PYTHON = Path("/tmp/bokeh-django-venv/bin/python")


@functools.lru_cache(maxsize=None)
def bokeh_django_python() -> str | None:
    """The interpreter that can run bokeh-django (with daphne and the bokeh of this venv's version), or None."""
    candidates = [os.environ.get("BOKEH_DJANGO_PYTHON"), str(BOKEH_DJANGO_VENV_PYTHON), PYTHON]
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [candidate, "-c", "import bokeh_django, daphne, bokeh; print(bokeh.__version__)"],
            capture_output=True, text=True, timeout=60,
        )
        if probe.returncode == 0:
            return candidate
    return None


def available(kind: str) -> tuple[bool, str]:
    """Whether ``kind`` can run here, and why not."""
    if kind in (*OUR_KINDS, "bokeh serve"):
        return True, ""
    if kind == "bokeh-django":
        if bokeh_django_python() is None:
            return False, ("bokeh-django is not installed (set BOKEH_DJANGO_PYTHON, or make /tmp/bokeh-django-venv: "
                           "see bench/servers.py)")
        return True, ""
    return False, f"unknown server kind {kind!r}"


def _places_itself() -> bool:
    """Whether the served tree's runbokeh moves its threads between cores (trees before 202d505 do not)."""
    return (server_root() / "bokehserver" / "core_placement.py").exists()


def _command(kind: str, apps: Sequence[str], port: int, placed: bool = False) -> list[str]:
    origin = f"--allow-websocket-origin=127.0.0.1:{port}"
    if kind in OUR_KINDS:
        command = [PYTHON, str(server_root() / "manage.py"), "runbokeh", *apps, "--port", str(port),
                   "--address", "127.0.0.1", origin, "--log-level", "warning",
                   *shlex.split(os.environ.get("BENCH_RUNBOKEH_ARGS", "")),
                   # the benchmark places the server itself: runbokeh must not move away from it
                   *(["--no-pin-cores"] if placed and _places_itself() else [])]
        return command + ["--app-code-threads", "0"] if kind == "bokehserver-loop" else command
    if kind == "bokeh serve":
        return [PYTHON, "-m", "bokeh", "serve", *apps, "--port", str(port), "--address", "127.0.0.1", origin,
                "--log-level", "warning"]
    if kind == "bokeh-django":
        python = bokeh_django_python()
        if python is None:
            raise RuntimeError(available(kind)[1])
        return [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
                "bokeh_django_site.asgi:application"]
    raise ValueError(kind)


def _environment(kind: str, apps: Sequence[str], extra_env: dict[str, str] | None) -> dict[str, str]:
    if kind == "bokeh-django":
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bokeh_django_site.settings",
               "PYTHONPATH": str(ROOT / "bench"),
               "BENCH_BOKEH_DJANGO_APPS": os.pathsep.join(str(Path(app).resolve()) for app in apps)}
        env.pop("VIRTUAL_ENV", None)
        return {**env, **(extra_env or {})}
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", **(extra_env or {})}
    env.setdefault("BOKEHSERVER_DB", str(Path(tempfile.gettempdir()) / "bokehserver-bench.sqlite3"))
    return env


@contextlib.contextmanager
def running(kind: str, apps: Sequence[str], ready_path: str, extra_env: dict[str, str] | None = None,
            placed: bool = False) -> Iterator[RunningServer]:
    """Run one server (``"bokehserver"``, ``"bokeh serve"`` or ``"bokeh-django"``) serving ``apps`` until the block ends.

    ``placed``: the caller pins the server to cores itself (bench/pinning.py), so runbokeh keeps out of it.
    """
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{kind.replace(' ', '-')}-", suffix=".log", delete=False)
    env = _environment(kind, apps, extra_env)
    cwd = ROOT / "bench" if kind == "bokeh-django" else server_root() if kind in OUR_KINDS else ROOT
    process = subprocess.Popen(_command(kind, apps, port, placed), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url + ready_path, process, Path(log.name))
        yield RunningServer(kind, url, process, Path(log.name))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
