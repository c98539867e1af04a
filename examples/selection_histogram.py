"""A scatter of two correlated measurements with a histogram of x that follows the selection.

Select points (box or lasso) and the orange histogram counts only them; the ``bins`` slider sets
how finely x is binned. The data are drawn from a seeded generator, so every session, under any
server, starts from the same document.
"""
import numpy as np

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Slider
from bokeh.plotting import curdoc, figure

rng = np.random.default_rng(7)
x = rng.normal(0.0, 1.0, 400)
y = 0.6 * x + rng.normal(0.0, 0.8, 400)

points = ColumnDataSource({"x": x, "y": y}, name="points")
counts = ColumnDataSource({"left": [], "right": [], "all": [], "selected": []}, name="counts")
bins = Slider(start=5, end=40, step=1, value=12, title="bins", name="bins")

scatter = figure(width=420, height=420, tools="box_select,lasso_select,reset", title="measurements")
scatter.scatter("x", "y", source=points, size=5, alpha=0.6)
histogram = figure(width=420, height=420, title="x")
histogram.quad(left="left", right="right", bottom=0, top="all", source=counts, color="lightgrey")
histogram.quad(left="left", right="right", bottom=0, top="selected", source=counts, color="orange", alpha=0.8)


def recount(attr: str, old: object, new: object) -> None:
    """Bin all points and the selected ones with the slider's number of bins."""
    edges = np.linspace(x.min(), x.max(), bins.value + 1)
    chosen = points.selected.indices
    counts.data = {
        "left": edges[:-1],
        "right": edges[1:],
        "all": np.histogram(x, edges)[0],
        "selected": np.histogram(x[chosen], edges)[0] if chosen else np.zeros(bins.value, dtype=int),
    }


bins.on_change("value", recount)
points.selected.on_change("indices", recount)
recount("value", None, bins.value)

curdoc().add_root(column(bins, row(scatter, histogram)))
curdoc().title = "Selection histogram"
