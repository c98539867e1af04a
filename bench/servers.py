"""Start the servers a benchmark compares, on free ports of 127.0.0.1, and stop them afterwards."""
from __future__ import annotations

import contextlib
import os
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


def _command(kind: str, apps: Sequence[str], port: int) -> list[str]:
    origin = f"--allow-websocket-origin=127.0.0.1:{port}"
    if kind == "bokehserver":
        return [PYTHON, str(ROOT / "manage.py"), "runbokeh", *apps, "--port", str(port), "--address", "127.0.0.1",
                origin, "--log-level", "warning"]
    if kind == "bokeh serve":
        return [PYTHON, "-m", "bokeh", "serve", *apps, "--port", str(port), "--address", "127.0.0.1", origin,
                "--log-level", "warning"]
    raise ValueError(kind)


@contextlib.contextmanager
def running(kind: str, apps: Sequence[str], ready_path: str, extra_env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    """Run one server (``"bokehserver"`` or ``"bokeh serve"``) serving ``apps`` until the block ends."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{kind.replace(' ', '-')}-", suffix=".log", delete=False)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", **(extra_env or {})}
    env.setdefault("BOKEHSERVER_DB", str(Path(tempfile.gettempdir()) / "bokehserver-bench.sqlite3"))
    process = subprocess.Popen(_command(kind, apps, port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
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
