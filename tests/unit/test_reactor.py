"""Twisted's reactor moves to a Server's loop only on the versions that move was proven on."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import asyncio, sys
from packaging.version import Version
from bokehserver._compat import versions
from bokehserver._compat.reactor import installed_reactor_loop, reactor_on

real = versions.installed
if sys.argv[1] == "unproven":
    versions.installed = lambda dist: Version("99.1.0") if dist == "twisted" else real(dist)
import daphne.server  # installs the reactor on a loop of daphne's own
daphne_loop = installed_reactor_loop()
assert reactor_on(daphne_loop) is sys.modules["twisted.internet.reactor"]
loop = asyncio.new_event_loop()
try:
    reactor = reactor_on(loop)
except RuntimeError as exc:
    print("refused:", exc)
else:
    print("moved:", installed_reactor_loop() is loop, daphne.server.reactor is reactor)
loop.close()
"""


def run(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_a_proven_twisted_moves_to_the_servers_loop_with_daphnes_reference():
    assert "moved: True True" in run("proven")


def test_an_unproven_twisted_stays_on_its_loop_and_the_server_is_told_why():
    out = run("unproven")
    assert "refused: Twisted's reactor is bound to another event loop" in out
    assert "keeps the upstream behaviour for Twisted's installed reactor" in out and "twisted 99.1.0" in out
