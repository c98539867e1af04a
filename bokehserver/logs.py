"""runbokeh's logging options, as bokeh serve's: ``--log-level``, ``--log-format``, ``--log-file``.

A Django site configures logging with ``LOGGING``; runbokeh respects that and only changes what
its options name. A site that configures nothing would show bokehserver's records only from
WARNING up, without time or level (Python's last-resort handler); there runbokeh prints them as
bokeh serve does: a timestamped line per record on stderr, from INFO up.
"""
from __future__ import annotations

import logging

__all__ = ("DEFAULT_FORMAT", "LOG_LEVELS", "configure")

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical")
# the loggers an operator of a Bokeh server reads: the server, bokeh, the warnings app code raises
_OPERATOR_LOGGERS = ("bokehserver", "bokeh", "py.warnings")


def _handlers_reached(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of ``logger`` reaches, following propagation."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(current.handlers)
        current = current.parent if current.propagate else None  # type: ignore[assignment]
    return found


def configure(level: str | None = None, fmt: str | None = None, filename: str | None = None) -> None:
    """Apply runbokeh's options over the site's logging configuration.

    Python warnings go to the logging system (logger ``py.warnings``), so they read like every
    other line. ``level`` sets bokehserver's and bokeh's loggers ("trace" is DEBUG); ``fmt``
    replaces the format of every handler that prints the operator's records; ``filename`` adds a
    file those records go to.
    """
    logging.captureWarnings(True)
    root = logging.getLogger()
    unconfigured = not _handlers_reached(logging.getLogger("bokehserver"))  # (bokeh gives its own logger a handler)
    if filename:
        root.addHandler(logging.FileHandler(filename))
    elif unconfigured:
        root.addHandler(logging.StreamHandler())
    if unconfigured and level is None:
        level = "info"
    if level is not None:
        value = logging.DEBUG if level == "trace" else getattr(logging, level.upper())
        for name in ("bokehserver", "bokeh"):
            logging.getLogger(name).setLevel(value)
    formatter = logging.Formatter(fmt or DEFAULT_FORMAT)
    for name in _OPERATOR_LOGGERS:
        for handler in _handlers_reached(logging.getLogger(name)):
            if fmt or unconfigured or handler.formatter is None:
                handler.setFormatter(formatter)
