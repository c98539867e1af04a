"""Counts the sessions built: one line per on_session_created, with the building process's pid."""
import os


def on_session_created(session_context):
    path = os.environ.get("RELAY_APP_HOOK_FILE")
    if path:
        with open(path, "a") as log:
            log.write(f"{session_context.id} {os.getpid()}\n")
