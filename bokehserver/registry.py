"""Turning app specs (paths, dotted callables, functions) into Applications, and the process's web application."""
from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bokeh.application import Application
from bokeh.application.handlers import DirectoryHandler, FunctionHandler, NotebookHandler, ScriptHandler
from bokeh.application.handlers.handler import Handler
from bokeh.document import Document

if TYPE_CHECKING:
    from .asgi import BokehASGI

logger = logging.getLogger(__name__)

__all__ = (
    "AppSpecError",
    "build_application",
    "get_web_application",
    "installed_web_application",
    "install",
    "routes_for_paths",
    "uninstall",
)

_DOTTED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

AppSpec = Any  # Application | Callable[[Document], None] | str | os.PathLike


class AppSpecError(ValueError):
    """An app given on the command line or in settings cannot be loaded."""


def _handler_for_path(path: Path, argv: Sequence[str]) -> Any:
    if path.is_dir():
        handler: Any = DirectoryHandler(filename=str(path), argv=list(argv))
    elif path.suffix == ".py":
        if path.name == "main.py":
            logger.warning("%s is a directory app's main.py; serve its folder to get templates and static files", path)
        handler = ScriptHandler(filename=str(path), argv=list(argv))
    elif path.suffix == ".ipynb":
        try:
            import nbconvert  # noqa: F401
            import nbformat  # noqa: F401
        except ImportError:
            raise AppSpecError(
                f"{path}: serving a notebook needs nbconvert and nbformat (pip install 'bokehserver[notebook]')"
            ) from None
        handler = NotebookHandler(filename=str(path), argv=list(argv))
    else:
        raise AppSpecError(f"{path}: expected a directory, a .py script or a .ipynb notebook")
    if handler.failed:
        raise AppSpecError(f"{path}: {handler.error}\n{handler.error_detail}")
    return handler


def _import_callable(dotted: str) -> Callable[[Document], None]:
    module_name, _, attr = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise AppSpecError(f"cannot import {dotted!r}: {exc}") from exc


def build_application(spec: AppSpec, argv: Sequence[str] = ()) -> Application:
    """Return an Application for a path, a ``"module:function"`` string, a function or an Application."""
    if isinstance(spec, Application):
        return spec
    if callable(spec):
        return Application(FunctionHandler(spec))
    text = os.fspath(spec)
    if _DOTTED.match(text) and not os.path.exists(text):
        return Application(FunctionHandler(_import_callable(text)))
    path = Path(text).expanduser()
    if not path.exists():
        raise AppSpecError(f"{text}: no such file or directory")
    return Application(_handler_for_path(path.resolve(), argv))


def spec_problem(spec: AppSpec) -> str | None:
    """Why ``spec`` cannot load, found without running any app code (None: it looks loadable).

    For system checks at every ``manage.py`` command: scripts are compiled, not run, and
    notebooks are not converted.
    """
    if isinstance(spec, Application) or callable(spec):
        return None
    text = os.fspath(spec)
    if _DOTTED.match(text) and not os.path.exists(text):
        try:
            _import_callable(text)
        except AppSpecError as exc:
            return str(exc)
        return None
    path = Path(text).expanduser()
    if path.is_dir():
        mains = [path / "main.py", path / "main.ipynb"]
        if not any(main.exists() for main in mains):
            return f"{text}: a directory app needs a main.py or main.ipynb"
        path = next(main for main in mains if main.exists())
    elif not path.exists():
        return f"{text}: no such file or directory"
    if path.suffix == ".ipynb":
        try:
            import nbconvert  # noqa: F401
        except ImportError:
            return f"{text}: serving a notebook needs nbconvert and nbformat (pip install 'bokehserver[notebook]')"
        return None
    if path.suffix != ".py":
        return f"{text}: expected a directory, a .py script or a .ipynb notebook"
    try:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except (SyntaxError, ValueError, OSError, UnicodeDecodeError) as exc:
        return f"{text}: {type(exc).__name__}: {exc}"
    return None


def routes_for_paths(paths: Sequence[str | os.PathLike[str]], argv: Sequence[str] = ()) -> dict[str, Application]:
    """Map each script, notebook or directory to bokeh serve's route for it (``/<name>``)."""
    routes: dict[str, Application] = {}
    for raw in paths:
        app = build_application(raw, argv)
        route = app.handlers[0].url_path()
        if not route:
            raise AppSpecError(f"{raw}: cannot derive a URL path")
        if route in routes:
            raise AppSpecError(f"{raw}: two apps would be served at {route}")
        routes[route] = app
    return routes


class _Unloadable(Handler):
    """Stands for an app that cannot be loaded: its documents stay empty, and each build says why."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self._reason = error

    @property
    def failed(self) -> bool:
        return True

    @property
    def error(self) -> str:
        return self._reason

    @property
    def error_detail(self) -> str:
        return self._reason

    def modify_document(self, doc: Document) -> None:
        pass


def failed_application(error: str) -> Application:
    """An app that cannot load: every session gets an empty document, and the log says why."""
    return Application(_Unloadable(error))


def normalize_routes(apps: Mapping[str, AppSpec], argv: Sequence[str] = ()) -> dict[str, Application]:
    """Check URL paths and build every Application of a ``{path: spec}`` mapping.

    An app that fails to load is logged and served with empty documents, so one broken app
    does not take the site's other apps down with it.
    """
    routes: dict[str, Application] = {}
    for route, spec in apps.items():
        if not isinstance(route, str) or not route.startswith("/"):
            raise AppSpecError(f"app path {route!r} must start with '/'")
        if route != "/" and route.endswith("/"):
            route = route.rstrip("/")
        try:
            routes[route] = build_application(spec, argv)
        except AppSpecError as exc:
            logger.error("App %s cannot be loaded: %s", route, exc)
            routes[route] = failed_application(str(exc))
    return routes


_lock = threading.Lock()
_current: BokehASGI | None = None


def install(web_application: BokehASGI) -> None:
    """Make ``web_application`` the one this process's views and consumers serve."""
    global _current
    with _lock:
        _current = web_application


def uninstall(web_application: BokehASGI | None = None) -> None:
    global _current
    with _lock:
        if web_application is None or _current is web_application:
            _current = None


def installed_web_application() -> BokehASGI | None:
    """The web application this process serves, if it serves one (never builds it)."""
    with _lock:
        return _current


def get_web_application() -> BokehASGI:
    """The installed web application, built from settings on first use when none was installed."""
    global _current
    with _lock:
        if _current is None:
            from .asgi import BokehASGI

            _current = BokehASGI.from_settings()
        return _current
