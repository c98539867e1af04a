"""Processes a test starts, stopped by it whatever happens: nothing outlives the suite."""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Kill what is left of the process group ``proc`` leads (started with ``start_new_session``)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_in_group(command: Sequence[str], *, timeout: float, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` for a command that starts servers of its own: it runs in a process group
    of its own, and whatever of that group is left when it ends, fails or times out is killed."""
    proc = subprocess.Popen(
        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # lets the command stop its servers
        try:
            stdout, stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            stdout, stderr = proc.communicate()
        stderr += f"\n[conftest] killed after {timeout:.0f} s"
    finally:
        kill_group(proc)
    return subprocess.CompletedProcess(list(command), proc.returncode, stdout, stderr)
