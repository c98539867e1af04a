"""A test app for relayed websockets: a slider echoed by a callback, a periodic tick, the building process's pid."""
import os

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Div, Slider

slider = Slider(name="slider", start=0, end=100, value=1, step=1, title="value")
echo = Div(name="echo", text="1")
ticks = Div(name="ticks", text="0")
pid = Div(name="pid", text=str(os.getpid()))


def on_value(attr, old, new):
    echo.text = str(new)


def tick():
    ticks.text = str(int(ticks.text) + 1)


slider.on_change("value", on_value)
curdoc().add_periodic_callback(tick, 200)
curdoc().add_root(column(slider, echo, ticks, pid))
