"""Telling an app's own failure from a client's bad input, so the log shows each as an operator needs.

A PATCH-DOC fails either because the client sent something bokeh cannot apply (an unknown model,
an invalid value: the client's fault, one WARNING line) or because an ``on_change`` or event
handler of the app raised (the app's fault: ERROR with the traceback, file and line, as bokeh
serve logs it). What tells them apart is where the exception went: through a frame of the app's
own code, or only through bokeh, bokehserver, numpy (which bokeh hands client buffers to) and
the standard library.
"""
from __future__ import annotations

import logging
import os
import sysconfig
from typing import Any

import bokeh
import numpy

__all__ = ("log_failure", "raised_in_app_code")


def _dirs(*paths: str) -> tuple[str, ...]:
    return tuple(os.path.join(os.path.realpath(path), "") for path in paths)


_PATHS = sysconfig.get_paths()
_LIBRARIES = _dirs(os.path.dirname(bokeh.__file__), os.path.dirname(os.path.abspath(__file__)), os.path.dirname(numpy.__file__))
_STDLIB = _dirs(_PATHS["stdlib"], _PATHS["platstdlib"])
_INSTALLED = _dirs(_PATHS["purelib"], _PATHS["platlib"])  # inside the stdlib dir on some Pythons: apps may live there


def _is_library(filename: str) -> bool:
    if filename.startswith("<frozen "):
        return True
    path = os.path.realpath(filename)
    return path.startswith(_LIBRARIES) or (path.startswith(_STDLIB) and not path.startswith(_INSTALLED))


def raised_in_app_code(exc: BaseException) -> bool:
    """Whether ``exc`` came through a frame of app code (anything but bokeh, bokehserver, numpy, stdlib)."""
    tb = exc.__traceback__
    while tb is not None:
        if not _is_library(tb.tb_frame.f_code.co_filename):
            return True
        tb = tb.tb_next
    return False


def log_failure(log: logging.Logger, exc: BaseException, message: str, *args: Any) -> None:
    """Log ``message % args`` once: at ERROR with the traceback if app code raised, else one WARNING line."""
    if raised_in_app_code(exc):
        log.error(message + ": %r", *args, exc, exc_info=exc)
    else:
        log.warning(message + ": %r", *args, exc)
