"""Benchmark app: the per-session way (one periodic callback per session, each repeating the work)."""
import sys
from pathlib import Path

from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feed_work import next_rows  # noqa: E402

source = ColumnDataSource(data={"t": [], "value": []}, name="source")
state = {"tick": 0}


def update():
    state["tick"] += 1
    source.stream(next_rows(state["tick"]), rollover=200)


curdoc().add_root(source)
curdoc().add_periodic_callback(update, 100)
