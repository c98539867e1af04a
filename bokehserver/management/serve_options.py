"""``bokeh serve`` options that ``runbokeh`` does not take, and what replaces each in a Django site.

``runbokeh`` lists them in its ``--help`` and refuses them with that replacement, so a command
line copied from ``bokeh serve`` fails with a way forward instead of argparse's bare
"unrecognized arguments".
"""
from __future__ import annotations

import argparse
from typing import Any, NoReturn

__all__ = ("REPLACED_OPTIONS", "add_replaced_options")

AUTH_DOCS = "docs/auth.md"

# bokeh serve option -> (whether it takes a value, what replaces it)
REPLACED_OPTIONS: dict[str, tuple[bool, str]] = {
    "--auth-module": (True, "Django authentication replaces it: BOKEHSERVER['LOGIN_REQUIRED'] (True or app paths) "
                            "and BOKEHSERVER['ACCESS'] rules ('login', 'perm:app.codename', a callable) with the "
                            f"site's LOGIN_URL and login views ({AUTH_DOCS})"),
    "--enable-xsrf-cookies": (False, "Django's CSRF protection replaces it: CsrfViewMiddleware guards the site's "
                                     "forms; app pages answer GET only and websockets are checked against the "
                                     f"allowed origins ({AUTH_DOCS})"),
    "--cookie-secret": (True, "Django's SECRET_KEY signs the site's cookies and sessions; "
                              "BOKEHSERVER['SECRET_KEY'] signs session ids"),
    "--include-headers": (True, "set BOKEHSERVER['INCLUDE_HEADERS']"),
    "--exclude-headers": (True, "set BOKEHSERVER['EXCLUDE_HEADERS']"),
    "--include-cookies": (True, "set BOKEHSERVER['INCLUDE_COOKIES']"),
    "--exclude-cookies": (True, "set BOKEHSERVER['EXCLUDE_COOKIES']"),
    "--num-procs": (True, "start several runbokeh processes with the Redis channel layer (README: several processes)"),
    "--ssl-certfile": (True, "terminate TLS in a proxy in front, or run daphne with -e ssl:...:privateKey=...:certKey=..."),
    "--ssl-keyfile": (True, "terminate TLS in a proxy in front, or run daphne with -e ssl:...:privateKey=...:certKey=..."),
    "--unix-socket": (True, "run daphne -u PATH with the site's ASGI application"),
    "--use-xheaders": (False, "run daphne with --proxy-headers; Django's SECURE_PROXY_SSL_HEADER and "
                              "USE_X_FORWARDED_HOST read the proxy's headers"),
    "--use-config": (True, "put the options in settings.BOKEHSERVER"),
    "--dev": (None, "no reloading server: restart runbokeh after a change"),  # bokeh serve's --dev takes optional files
    "--mem-log-frequency": (True, "memory logging is not implemented (the stats log lines count sessions and connections)"),
    "--websocket-compression-level": (True, "daphne does not compress websocket messages"),
    "--websocket-compression-mem-level": (True, "daphne does not compress websocket messages"),
}


class _Refused(argparse.Action):
    """Refuses its option, saying what replaces it."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> NoReturn:
        replacement = REPLACED_OPTIONS[self.option_strings[0]][1]
        # Django's parser: usage and exit 2 on the command line, CommandError from call_command
        parser.error(f"{option_string} is a bokeh serve option runbokeh does not take: {replacement}")


def add_replaced_options(parser: Any) -> None:
    """Add bokeh serve's options that runbokeh refuses, each saying in ``--help`` what to use instead."""
    group = parser.add_argument_group("bokeh serve options that the Django site replaces (refused)")
    for option, (takes_value, replacement) in REPLACED_OPTIONS.items():
        nargs = "*" if takes_value is None else (None if takes_value else 0)
        group.add_argument(option, action=_Refused, nargs=nargs, default=argparse.SUPPRESS,
                           help=replacement.replace("%", "%%"), metavar="VALUE" if takes_value else None)
