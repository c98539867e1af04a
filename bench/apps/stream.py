"""Benchmark app: streams 10 rows every 50 ms (20 Hz) into a ColumnDataSource named "source".

Column "t" holds the wall-clock time the tick ran, so a client can tell when the server's ticks
ran apart from when their messages arrived.
"""
import time

from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

ROWS, PERIOD_MS = 10, 50
source = ColumnDataSource(data={"i": [], "t": []}, name="source")
state = {"i": 0}


def tick():
    start = state["i"]
    state["i"] += ROWS
    source.stream({"i": list(range(start, start + ROWS)), "t": [time.time()] * ROWS}, rollover=1000)


curdoc().add_root(source)
curdoc().add_periodic_callback(tick, PERIOD_MS)
