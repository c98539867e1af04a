"""The dependency versions each replacement of a dependency's internals was proven on.

Every replacement asks :func:`proven` before it takes over; outside its range it leaves the
dependency's own behaviour in place and says so in one log line. A range is widened only once
the test suite has passed on the new version (see ``docs/compatibility.md``).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

logger = logging.getLogger(__name__)

__all__ = ("PROVEN", "installed", "proven")

# replacement -> what it replaces, and the versions of each distribution it reaches into that it was proven on
PROVEN: dict[str, tuple[str, dict[str, str]]] = {
    "curdoc stack": (
        "bokeh's process-wide list of patched curdoc() documents, made per task and thread",
        {"bokeh": ">=3.6,<3.10"},
    ),
    "model shortcuts": (
        "HasProps construction, default lookups, serialization, settings reads and PATCH-DOC references (bokehserver._compat.fast_models)",
        {"bokeh": ">=3.6,<3.11"},
    ),
    "patch listeners": (
        "bokeh's registries of Python change callbacks, read to apply a PATCH-DOC nothing listens to on the event loop",
        {"bokeh": ">=3.6,<3.11"},
    ),
    "document validation": (
        "the _check* validators bokeh's check_integrity finds with dir() on every model, found once per class",
        {"bokeh": ">=3.6,<3.11"},
    ),
    "document release": (
        "Document.destroy without its per-document gc.collect() and leak scan",
        {"bokeh": ">=3.6,<3.11"},
    ),
    "lifecycle hooks": (
        "the user's functions behind bokeh's lifecycle handler methods",
        {"bokeh": ">=3.6,<3.11"},
    ),
    "session context": (
        "bokeh's abstract SessionContext, subclassed for bokehserver's sessions",
        {"bokeh": ">=3.6,<3.11"},
    ),
    "response logged": (
        "Django's mark on a response that django.request has logged it",
        {"django": ">=5.2,<6.2"},
    ),
    "extension registry": (
        "bokeh's registry of Bokeh extensions' file folders and its resolution of their bundles",
        {"bokeh": ">=3.6,<3.11"},
    ),
    "panel onload": (
        "Panel's scheduling of pn.state.onload callbacks, connected to a session's document as panel serve does",
        {"panel": ">=1.9,<1.10"},
    ),
    "receiver release": (
        "the last message's fragments and parts bokeh's Receiver keeps until the next message",
        {"bokeh": ">=3.6,<3.11"},
    ),
    "frame writes": (
        "autobahn's per-frame sends, bypassed to write a whole Bokeh message at once",
        {"autobahn": ">=24.4.2,<26.12", "twisted": ">=24.3,<26.11"},
    ),
    "message gathering": (
        "daphne's per-frame hand-over to the application, replaced by one event per Bokeh message",
        {"daphne": ">=4.2.2,<4.3", "autobahn": ">=24.4.2,<26.12"},
    ),
    "frame reading": (
        "autobahn's per-frame parsing of incoming websocket frames, bypassed for whole plain frames",
        {"autobahn": ">=24.4.2,<26.12"},
    ),
    "small frame unmasking": (
        "autobahn's XOR masker object made for every incoming frame, replaced for small frames",
        {"autobahn": ">=24.4.2,<26.12"},
    ),
    "autobahn read debug line": (
        "autobahn's debug line formatted for every read of a websocket, logged or not",
        {"autobahn": ">=24.4.2,<26.12"},
    ),
    "autobahn config dump": (
        "autobahn's pretty-printed configuration at every websocket handshake",
        {"autobahn": ">=24.4.2,<26.12"},
    ),
    "plain daphne sockets": (
        "the limits and close of a socket of plain daphne or daphne's runserver, reached from the application",
        {"daphne": ">=4.2.2,<4.3", "autobahn": ">=24.4.2,<26.12"},
    ),
    "twisted write buffer": (
        "the bytes a Twisted transport still holds for its peer, read for the send queue limit",
        {"twisted": ">=24.3,<26.11"},
    ),
    "twisted http pipelining": (
        "the bytes Twisted's HTTPChannel holds behind the request it handles, read to bound pipelining",
        {"twisted": ">=24.3,<26.11"},
    ),
    "daphne listen": (
        "daphne's Server.run() without reactor.run(), so that a running loop drives the reactor",
        {"daphne": ">=4.2.2,<4.3"},
    ),
    "connection handoff": (
        "a websocket's TCP transport taken from daphne before its handshake is answered, and adopted by a sibling's daphne",
        {"twisted": ">=24.3,<26.11", "daphne": ">=4.2.2,<4.3", "autobahn": ">=24.4.2,<26.12"},
    ),
    "reactor rebinding": (
        "Twisted's installed reactor, daphne's and txaio's references to it, moved to another loop",
        {"twisted": ">=24.3,<26.11", "daphne": ">=4.2.2,<4.3", "txaio": ">=23.1.1,<26.7"},
    ),
}

_reported: set[str] = set()
_outside: dict[tuple[str, tuple[Version | None, ...]], list[str]] = {}
_answers: dict[tuple[str, object], bool] = {}


@lru_cache(maxsize=None)
def installed(distribution: str) -> Version | None:
    """The installed version of ``distribution``, or None when it is missing or unreadable."""
    try:
        return Version(version(distribution))
    except (PackageNotFoundError, InvalidVersion):
        return None


def proven(name: str) -> bool:
    """Whether the replacement ``name`` was proven on the installed versions; logs once per process when not.

    Asked on hot paths (every websocket send): the answer is kept per name and version lookup.
    """
    key = (name, installed)  # a stand-in for ``installed`` (tests pretend other versions) asks afresh
    answer = _answers.get(key)
    if answer is None:
        answer = _answers[key] = _decide(name)
    return answer


def _decide(name: str) -> bool:
    what, ranges = PROVEN[name]
    found = tuple(installed(distribution) for distribution in ranges)
    outside = _outside.get((name, found))
    if outside is None:
        outside = _outside[(name, found)] = [
            f"{distribution} {version or 'missing'} (proven {spec})"
            for (distribution, spec), version in zip(ranges.items(), found)
            if version is None or not SpecifierSet(spec).contains(version, prereleases=True)
        ]
    if outside and name not in _reported:
        _reported.add(name)
        logger.warning("bokehserver keeps the upstream behaviour for %s: %s", what, ", ".join(outside))
    return not outside
