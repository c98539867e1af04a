"""Benchmark app: the shared way (server_lifecycle computes each update once for all sessions)."""
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

curdoc().add_root(ColumnDataSource(data={"t": [], "value": []}, name="source"))
