"""Sine wave driven by four sliders and a title text box.

Serve with ``python manage.py runbokeh examples/sliders.py`` and open
``/sliders``.  Every slider change is sent to the server, which recomputes
the curve in Python and pushes the new data back to the browser.
"""
import numpy as np

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Slider, TextInput
from bokeh.plotting import curdoc, figure

x = np.linspace(0, 4 * np.pi, 200)
source = ColumnDataSource(data=dict(x=x, y=np.sin(x)), name="source")

plot = figure(
    name="plot",
    title="y = a sin(f x + p) + o",
    height=400,
    width=600,
    x_range=(0, 4 * np.pi),
    y_range=(-10, 10),
    tools="pan,wheel_zoom,reset,save",
)
plot.line("x", "y", source=source, line_width=3, line_alpha=0.7)

title = TextInput(name="title", title="Plot title", value=plot.title.text)
amplitude = Slider(name="amplitude", title="Amplitude", start=0, end=5, value=1, step=0.1)
frequency = Slider(name="frequency", title="Frequency", start=0.1, end=5, value=1, step=0.1)
phase = Slider(name="phase", title="Phase", start=0, end=2 * np.pi, value=0, step=0.1)
offset = Slider(name="offset", title="Offset", start=-5, end=5, value=0, step=0.1)
sliders = [amplitude, frequency, phase, offset]


def set_title(attr, old, new):
    plot.title.text = new


def recompute(attr, old, new):
    xs = source.data["x"]
    ys = amplitude.value * np.sin(frequency.value * xs + phase.value) + offset.value
    source.data = dict(x=xs, y=ys)


title.on_change("value", set_title)
for slider in sliders:
    slider.on_change("value", recompute)

curdoc().add_root(row(column(title, *sliders), plot))
curdoc().title = "Sliders"
