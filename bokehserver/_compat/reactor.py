"""Twisted's asyncio reactor, bound to the loop a Server runs.

Importing ``daphne.server`` installs Twisted's asyncio reactor bound to a loop of daphne's own. A
Server that serves from another loop (one already running, or a fresh one after ``fork``)
installs the reactor again on that loop, and points daphne's and txaio's references at it: a
rebinding proven on the versions in ``versions.PROVEN``. Elsewhere only a reactor not yet
installed is installed (Twisted's public ``asyncioreactor.install``), and a reactor bound to
another loop is refused with an error that says so.
"""
from __future__ import annotations

import asyncio
import sys
from typing import Any

from .versions import proven

__all__ = ("installed_reactor_loop", "reactor_loop", "reactor_on")


def reactor_loop(reactor: Any) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop an asyncio reactor runs on (None for another kind of reactor)."""
    return getattr(reactor, "_asyncioEventloop", None)


def installed_reactor_loop() -> asyncio.AbstractEventLoop | None:
    """The loop of the reactor installed in this process, if one is."""
    installed = sys.modules.get("twisted.internet.reactor")
    return reactor_loop(installed) if installed is not None else None


def reactor_on(loop: asyncio.AbstractEventLoop) -> Any:
    """Twisted's reactor, driven by ``loop``: installed, or re-installed if bound to a loop that is not running."""
    from twisted.internet import asyncioreactor

    installed = sys.modules.get("twisted.internet.reactor")
    if installed is not None:
        current = reactor_loop(installed)
        if current is loop:
            return installed
        if (current.is_running() if current is not None else installed.running):
            raise RuntimeError(
                "Twisted's reactor is already driven by another running event loop; "
                "a process serves from one loop (start the Server in that loop)"
            )
        if not proven("reactor rebinding"):
            raise RuntimeError(
                "Twisted's reactor is bound to another event loop, and moving it is proven only on the "
                "versions listed in bokehserver's docs/compatibility.md; run the Server on the reactor's "
                "loop (leave io_loop unset and call run_until_shutdown())"
            )
        del sys.modules["twisted.internet.reactor"]
    asyncioreactor.install(loop)
    from twisted.internet import reactor

    if installed is not None:
        daphne_server = sys.modules.get("daphne.server")
        if daphne_server is not None:
            daphne_server.reactor = reactor  # daphne's timers use the reactor it imported
        txaio = sys.modules.get("txaio.tx")
        if txaio is not None and txaio.config.loop is installed:
            txaio.config.loop = None  # autobahn's timers: looked up again on next use
    return reactor
