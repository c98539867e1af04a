"""A clock: a timeout callback starts it, a periodic callback keeps it ticking once a second."""
import time

from bokeh.io import curdoc
from bokeh.models import Div

clock = Div(name="clock", text="starting...", styles={"font-size": "48px", "font-family": "monospace"})


def show_time():
    clock.text = time.strftime("%H:%M:%S")


def start():
    show_time()
    curdoc().add_periodic_callback(show_time, 1000)


curdoc().add_timeout_callback(start, 300)
curdoc().add_root(clock)
curdoc().title = "Clock"
