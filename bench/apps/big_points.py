"""Benchmark app: a scatter plot of a 100,000-point ColumnDataSource named "source".

x = 0, 1, ..., 99,999 and y = sin(x / 1000), both float64, so a client can check every value.
"""
import numpy as np

from bokeh.io import curdoc
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

POINTS = 100_000
x = np.arange(POINTS, dtype=np.float64)
source = ColumnDataSource(data={"x": x, "y": np.sin(x / 1000.0)}, name="source")
plot = figure(name="plot", title="100,000 points", width=800, height=400, output_backend="webgl")
plot.scatter("x", "y", source=source, size=2)
curdoc().add_root(plot)
curdoc().title = "100,000 points"
