"""Every viewer's plot shows the same feed; the server computes each update once for all of them."""
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div
from bokeh.plotting import figure

source = ColumnDataSource(data={"t": [], "price": []}, name="source")
plot = figure(name="plot", height=300, width=700, title="Shared price feed", x_axis_label="tick")
plot.line("t", "price", source=source)
curdoc().add_root(column(Div(name="viewers", text="One feed for every viewer"), plot))
curdoc().title = "Shared feed"
