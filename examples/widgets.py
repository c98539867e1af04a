"""A Select, a Button and a Div working together.

Serve with ``python manage.py runbokeh examples/widgets.py`` and open
``/widgets``.  The Select picks the wave shape, each press of the button
shifts the wave's phase, and the Div counts the presses.
"""
import numpy as np

from bokeh.events import ButtonClick
from bokeh.layouts import column, row
from bokeh.models import Button, ColumnDataSource, Div, Select
from bokeh.plotting import curdoc, figure

PHASE_STEP = np.pi / 8

FUNCTIONS = {
    "sin": np.sin,
    "cos": np.cos,
    "square": lambda t: np.sign(np.sin(t)),
}

state = {"phase": 0.0, "clicks": 0}

x = np.linspace(0, 2 * np.pi, 50)
source = ColumnDataSource(data=dict(x=x, y=np.sin(x)), name="source")

plot = figure(name="plot", height=350, width=550, y_range=(-1.2, 1.2),
              tools="pan,wheel_zoom,reset")
plot.line("x", "y", source=source, line_width=2)
plot.scatter("x", "y", source=source, size=5)

select = Select(name="select", title="Function", value="sin", options=list(FUNCTIONS))
button = Button(name="button", label="Shift", button_type="primary")
clicks = Div(name="clicks", text="Clicks: 0")


def update():
    func = FUNCTIONS[select.value]
    source.data = dict(x=x, y=func(x + state["phase"]))


def on_select(attr, old, new):
    update()


def on_click(event):
    state["clicks"] += 1
    state["phase"] += PHASE_STEP
    clicks.text = f"Clicks: {state['clicks']}"
    update()


select.on_change("value", on_select)
button.on_event(ButtonClick, on_click)

curdoc().add_root(row(column(select, button, clicks), plot))
curdoc().title = "Widgets"
