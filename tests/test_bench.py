"""The benchmarks run end to end: ``bench/run.py --quick`` against runbokeh and bokeh serve, and ``gc_pauses.py``.

Only that it runs and prints every scenario is checked, never how fast anything is.
"""
from __future__ import annotations

import re
import sys

import pytest

from processes import REPO_ROOT, run_in_group

SCENARIOS = ("open", "patch", "stream", "memory", "big", "fanout", "expire", "gc", "held")


@pytest.mark.e2e
def test_quick_benchmark_runs_end_to_end() -> None:
    done = run_in_group([sys.executable, str(REPO_ROOT / "bench" / "run.py"), "--quick"], timeout=900)
    report = f"exit {done.returncode}\n--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
    assert done.returncode == 0, report
    lines = done.stdout.splitlines()
    header = next((line for line in lines if line.startswith("scenario ")), None)
    assert header is not None, report
    assert "bokehserver" in header and "bokeh serve" in header and "ours/serve" in header, report
    for scenario in SCENARIOS:
        rows = [line for line in lines if re.match(rf"{scenario}\s", line)]
        assert rows, f"no table row for scenario {scenario!r}\n{report}"
        assert not any("FAILED" in row for row in rows), report
    assert not any(line.startswith("FAILED ") for line in lines), report
    if "note: procs: skipped" not in done.stdout:  # Redis answered: one worker against two, with the client named
        assert re.search(r"note: procs: .*client: (node|python)", done.stdout), report
        assert "2 workers / 1 worker, round trips/s" in done.stdout, report


def test_gc_pauses_runs_every_variant() -> None:
    done = run_in_group([sys.executable, str(REPO_ROOT / "bench" / "gc_pauses.py"), "--sessions", "2"], timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:]}
    assert set(rows) == {"bokehserver", "no-freeze", "bokeh-models"}, done.stdout
    assert int(rows["bokehserver"][3].replace(",", "")) > 0 == int(rows["no-freeze"][3].replace(",", "")), done.stdout
