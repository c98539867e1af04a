"""Dependencies at versions none of bokehserver's replacements was proven on: upstream code serves the app.

The server process is told (through a ``sitecustomize`` on its path) that the named distributions
are at versions no release has yet, so every replacement of their internals stands aside.
"""
from __future__ import annotations

import urllib.request

import pytest

from e2e.test_client import client_sessions, model, pump_until, y_matches

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("hard_timeout")]

UNKNOWN = {"bokeh": "3.99.0", "daphne": "4.99.0", "autobahn": "99.1.1", "twisted": "99.1.0", "txaio": "99.1.1"}
SITECUSTOMIZE = """
from packaging.version import Version
from bokehserver._compat import versions

_real, _unknown = versions.installed, {unknown!r}
versions.installed = lambda dist: Version(_unknown[dist]) if dist in _unknown else _real(dist)
"""
FALLBACKS = {
    "bokeh": ["HasProps construction", "bokeh's lifecycle handler methods"],
    "daphne": ["daphne's Server.run()"],
    "autobahn": ["autobahn's per-frame sends", "autobahn's pretty-printed configuration"],
}


@pytest.mark.parametrize("names", [("bokeh",), tuple(UNKNOWN)], ids=["bokeh", "every-dependency"])
def test_an_app_is_served_by_the_upstream_code_paths(names, bokeh_server_factory, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(unknown={n: UNKNOWN[n] for n in names}))
    server = bokeh_server_factory(env={"PYTHONPATH": str(site)})

    with urllib.request.urlopen(server.app_url("sliders"), timeout=15) as response:
        assert response.status == 200 and b"bokeh" in response.read()
    with client_sessions(server.app_url) as open_session:
        session = open_session("sliders")
        assert y_matches(session)
        model(session, "amplitude").value = 2.5
        assert pump_until(session, lambda: y_matches(session) and max(abs(v) for v in model(session, "source").data["y"]) > 2)

    log = server.log_text()
    said = [line for line in log.splitlines() if "keeps the upstream behaviour for" in line]
    for name in names:
        for fallback in FALLBACKS.get(name, []):
            assert any(fallback in line for line in said), (fallback, log)
    assert server.log_problems() == []
