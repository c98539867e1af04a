"""A random walk streamed into the page ten times a second, with rollover and an occasional patch."""
import numpy as np
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div
from bokeh.plotting import figure

ROLLOVER = 500
source = ColumnDataSource(data={"t": [], "value": []}, name="source")
status = Div(name="status", text="rows: 0")
plot = figure(name="plot", height=300, width=700, title="Random walk", x_axis_label="tick")
plot.line("t", "value", source=source)

state = {"t": 0, "value": 0.0}
rng = np.random.default_rng()


def tick():
    steps = rng.normal(size=10).cumsum() + state["value"]
    ts = list(range(state["t"], state["t"] + 10))
    state["t"] += 10
    state["value"] = float(steps[-1])
    source.stream({"t": ts, "value": steps.tolist()}, rollover=ROLLOVER)
    if state["t"] % 100 == 0 and len(source.data["value"]) > 0:
        # flatten the newest point back to the previous one now and then: a patch, not a stream
        last = len(source.data["value"]) - 1
        source.patch({"value": [(last, float(source.data["value"][last - 1]) if last else 0.0)]})
    status.text = f"rows: {state['t']}"


curdoc().add_periodic_callback(tick, 100)
curdoc().add_root(column(status, plot))
curdoc().title = "Streaming"
