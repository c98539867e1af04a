"""A scatter of a small car dataset whose axes, colour and size are chosen with selects.

Each select rebuilds the figure, as bokeh's own crossfilter example does: a discrete column on an
axis becomes a categorical axis, a column chosen for colour or size is binned.
"""
import numpy as np

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Select
from bokeh.palettes import Viridis5
from bokeh.plotting import curdoc, figure

rng = np.random.default_rng(11)
N = 120
ORIGINS = ["Europe", "Japan", "USA"]
cylinders = rng.choice([4, 6, 8], N)
data = {
    "weight": np.round(1500 + 350 * cylinders + rng.normal(0, 200, N)),
    "power": np.round(40 + 18 * cylinders + rng.normal(0, 12, N)),
    "acceleration": np.round(22 - cylinders + rng.normal(0, 1.5, N), 1),
    "cylinders": cylinders.astype(str),
    "origin": rng.choice(ORIGINS, N),
}
DISCRETE = {"cylinders", "origin"}
COLUMNS = list(data)
NONE = "None"

x = Select(title="x", value="weight", options=COLUMNS, name="x")
y = Select(title="y", value="power", options=COLUMNS, name="y")
colour = Select(title="colour", value=NONE, options=[NONE] + [c for c in COLUMNS if c not in DISCRETE], name="colour")
size = Select(title="size", value=NONE, options=[NONE] + [c for c in COLUMNS if c not in DISCRETE], name="size")


def binned(name: str, choices: list) -> list:
    """One of ``choices`` per row, by which fifth of column ``name``'s range the row falls in."""
    values = data[name]
    edges = np.linspace(values.min(), values.max(), len(choices) + 1)[1:-1]
    return [choices[i] for i in np.digitize(values, edges)]


def create_figure():
    xs, ys = data[x.value], data[y.value]
    kw = {"x_range": sorted(set(xs))} if x.value in DISCRETE else {}
    if y.value in DISCRETE:
        kw["y_range"] = sorted(set(ys))
    plot = figure(height=480, width=640, tools="pan,box_zoom,reset", title=f"{y.value} vs {x.value}", **kw)
    plot.xaxis.axis_label = x.value
    plot.yaxis.axis_label = y.value
    source = ColumnDataSource({
        "x": xs, "y": ys,
        "colour": binned(colour.value, list(Viridis5)) if colour.value != NONE else ["#31AADE"] * N,
        "size": binned(size.value, [6, 9, 12, 15, 18]) if size.value != NONE else [9] * N,
    })
    plot.scatter("x", "y", source=source, color="colour", size="size", line_color="white", alpha=0.6)
    return plot


def rebuild(attr: str, old: object, new: object) -> None:
    layout.children[1] = create_figure()


for select in (x, y, colour, size):
    select.on_change("value", rebuild)

layout = row(column(x, y, colour, size, width=200), create_figure())
curdoc().add_root(layout)
curdoc().title = "Crossfilter"
