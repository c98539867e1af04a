"""Each replacement of a dependency's internals knows the versions it was proven on."""
from __future__ import annotations

import logging

import pytest
from packaging.version import Version

from bokehserver._compat import versions


@pytest.fixture
def bokeh_at(monkeypatch):
    """Pretend bokeh is at the given version (None: not installed)."""
    real = versions.installed
    monkeypatch.setattr(versions, "_reported", set())

    def pretend(version: str | None) -> None:
        found = None if version is None else Version(version)
        monkeypatch.setattr(versions, "installed", lambda dist: found if dist == "bokeh" else real(dist))

    return pretend


def test_every_installed_dependency_is_within_what_was_proven(caplog):
    caplog.set_level(logging.WARNING, logger=versions.__name__)
    for name in versions.PROVEN:
        if name == "curdoc stack" and versions.installed("bokeh") >= Version("3.10"):
            continue  # bokeh 3.10 keeps its own curdoc stack per task: nothing to replace
        if name == "panel onload" and versions.installed("panel") is None:
            continue  # Panel is an optional extra: asked only when an app imported it
        assert versions.proven(name), name
    assert caplog.records == []


@pytest.mark.parametrize("version", ["3.11.0", "3.5.2", "4.0.0.dev1", None])
def test_a_version_outside_the_range_keeps_upstream_and_says_so_once(bokeh_at, caplog, version):
    bokeh_at(version)
    assert not versions.proven("model shortcuts")
    assert not versions.proven("model shortcuts")
    lines = [r.getMessage() for r in caplog.records if r.name == versions.__name__]
    assert len(lines) == 1
    assert "upstream behaviour for HasProps construction" in lines[0]
    assert f"bokeh {version or 'missing'} (proven >=3.6,<3.11)" in lines[0]


@pytest.mark.parametrize("version", ["3.6.0", "3.9.2", "3.10.2", "3.10.0rc1"])
def test_a_version_inside_the_range_is_proven(bokeh_at, version):
    bokeh_at(version)
    assert versions.proven("model shortcuts")
