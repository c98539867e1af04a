"""Server lifecycle hooks for ``dirapp``.

Bokeh loads this module once, when the application is added to the server
(separately from ``main.py``, which runs once per session).  Each hook just
logs a line so the lifecycle can be followed in the server log.
"""
import logging

log = logging.getLogger("examples.dirapp")


def on_server_loaded(server_context):
    log.info("dirapp: server loaded")


def on_server_unloaded(server_context):
    log.info("dirapp: server unloaded")


def on_session_created(session_context):
    log.info("dirapp: session created: %s", session_context.id)


def on_session_destroyed(session_context):
    log.info("dirapp: session destroyed: %s", session_context.id)
