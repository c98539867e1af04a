"""Two price series chosen with selects: linked time plots and a scatter of their daily returns.

The series are seeded random walks (no download needed); changing either ticker redraws both
plots and the correlation figure in the statistics box.
"""
import numpy as np

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Div, Select
from bokeh.plotting import curdoc, figure

TICKERS = ["AAA", "BBB", "CCC", "DDD"]
DAYS = 250


def prices(ticker: str) -> np.ndarray:
    """A year of closing prices, the same for a ticker every time."""
    rng = np.random.default_rng(sum(map(ord, ticker)))
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, DAYS)))


first = Select(title="first", value="AAA", options=TICKERS, name="first")
second = Select(title="second", value="BBB", options=[t for t in TICKERS if t != "AAA"], name="second")
source = ColumnDataSource(name="series")
stats = Div(name="stats")

plot_first = figure(width=560, height=200, title="first", x_axis_label="day")
plot_first.line("day", "first", source=source)
plot_second = figure(width=560, height=200, title="second", x_range=plot_first.x_range, x_axis_label="day")
plot_second.line("day", "second", source=source, color="firebrick")
returns = figure(width=360, height=360, title="daily returns", tools="box_select,reset")
returns.scatter("first_returns", "second_returns", source=source, size=3)


def update(attr: str, old: object, new: object) -> None:
    a, b = prices(first.value), prices(second.value)
    ra, rb = np.diff(a, prepend=a[0]) / a, np.diff(b, prepend=b[0]) / b
    source.data = {"day": np.arange(DAYS), "first": a, "second": b, "first_returns": ra, "second_returns": rb}
    plot_first.title.text = first.value
    plot_second.title.text = second.value
    stats.text = f"<b>{first.value} vs {second.value}</b>: correlation {np.corrcoef(ra[1:], rb[1:])[0, 1]:.3f}"


def first_changed(attr: str, old: str, new: str) -> None:
    second.options = [t for t in TICKERS if t != new]
    if second.value == new:
        second.value = second.options[0]  # runs update()
    else:
        update(attr, old, new)


first.on_change("value", first_changed)
second.on_change("value", update)
update("value", None, None)

curdoc().add_root(row(column(first, second, stats), column(plot_first, plot_second), returns))
curdoc().title = "Stocks"
