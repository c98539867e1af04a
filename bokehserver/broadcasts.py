"""Updating every session of an app, in every server process, from anywhere (a view, a command, a task).

What crosses the channel layer is data only: an app path, the dotted path of a function the
server processes import themselves, and its arguments (what the layer can serialize: numbers,
strings, lists, dicts, bytes). No code travels, and a server process runs only functions marked
with :func:`updates_sessions`, so a message naming any other function is refused.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import async_to_sync
from django.utils.module_loading import import_string

from .layers import shared_layer

if TYPE_CHECKING:
    from .asgi import BokehASGI

logger = logging.getLogger(__name__)

__all__ = ("BROADCAST", "apply", "broadcast", "broadcast_sync", "updates_sessions")

# sent to every server process's control listener (control.CONTROL_GROUP)
BROADCAST = "bokehserver.broadcast"
_MARK = "bokehserver_updates_sessions"

F = TypeVar("F", bound=Callable[..., Any])


def updates_sessions(func: F) -> F:
    """Mark ``func(doc, *args)`` as one that :func:`broadcast` may run on every session's document."""
    setattr(func, _MARK, True)
    return func


def _target(func_path: str) -> Callable[..., Any]:
    """The marked function at ``func_path`` ("package.module.function")."""
    func = import_string(func_path)
    if not getattr(func, _MARK, False):
        raise ValueError(f"{func_path} is not marked with @bokehserver.updates_sessions")
    return func


async def broadcast(app_path: str, func_path: str, *args: Any) -> None:
    """Run ``func(doc, *args)`` on every live session of ``app_path``, in every server process.

    Each session runs it under its lock, and its connections get the changes as a PATCH-DOC.
    With a shared channel layer (Redis) the request goes to every server process, this one
    included; without one, only to the sessions of the web application this process serves.

    Args:
        app_path: the app's URL path, e.g. ``"/sliders"``.
        func_path: dotted path of a function marked with :func:`updates_sessions`.
        *args: data the channel layer can carry (no objects, no code).

    Raises:
        ValueError, ImportError: ``func_path`` names no marked function (checked before sending).
    """
    _target(func_path)
    message = {"type": BROADCAST, "app_path": app_path, "func": func_path, "args": list(args)}
    layer = shared_layer()
    if layer is not None:
        from .control import CONTROL_GROUP

        await layer.group_send(CONTROL_GROUP, message)
        return
    from .registry import installed_web_application

    web_app = installed_web_application()
    if web_app is None:
        logger.warning("Broadcast to %s reaches no session: no channel layer is shared and no server runs here", app_path)
        return
    await apply(web_app, message)


broadcast_sync = async_to_sync(broadcast)
broadcast_sync.__doc__ = "``broadcast()`` for synchronous code (a Django view, a management command, a Celery task)."


async def apply(web_app: BokehASGI, message: dict[str, Any]) -> int:
    """Run a broadcast on this process's sessions of its app; return how many were updated."""
    app_path, func_path = str(message.get("app_path")), str(message.get("func"))
    context = web_app.context_for(app_path)
    if context is None:
        logger.debug("Broadcast for %s: no such app here", app_path)
        return 0
    try:
        func = _target(func_path)
    except Exception as exc:
        logger.warning("Refusing a broadcast to %s: %s", app_path, exc)
        return 0
    return await context.update_sessions(func, *list(message.get("args") or ()))
