"""One of each common Bokeh widget; every change is written by the server into the log below them.

Shows which Python callback each widget reaches (``on_change`` on a property, ``on_event`` on a
click) and what value arrives.
"""
from bokeh.events import ButtonClick, MenuItemClick
from bokeh.layouts import column, row
from bokeh.models import (
    Button,
    CheckboxGroup,
    ColorPicker,
    DatePicker,
    Div,
    Dropdown,
    MultiChoice,
    RadioButtonGroup,
    RangeSlider,
    Select,
    Slider,
    Spinner,
    Switch,
    TextInput,
    Toggle,
)
from bokeh.plotting import curdoc

log = Div(text="", name="log", width=400)


def write(line: str) -> None:
    log.text = "\n".join([*log.text.split("\n"), line][-12:]).strip("\n")


button = Button(label="Press", name="button")
button.on_event(ButtonClick, lambda event: write("button pressed"))
dropdown = Dropdown(label="Menu", menu=[("One", "one"), ("Two", "two")], name="dropdown")
dropdown.on_event(MenuItemClick, lambda event: write(f"menu={event.item}"))

widgets = [
    Toggle(label="Toggle", name="toggle"),
    CheckboxGroup(labels=["a", "b", "c"], active=[0], name="checkbox"),
    RadioButtonGroup(labels=["left", "middle", "right"], active=1, name="radio"),
    Slider(start=0, end=100, value=50, step=5, title="slider", name="slider"),
    RangeSlider(start=0, end=10, value=(2, 8), step=1, title="range", name="range"),
    TextInput(value="hello", title="text", name="text"),
    Select(options=["red", "green", "blue"], value="red", title="select", name="select"),
    MultiChoice(options=["x", "y", "z"], value=["x"], title="choices", name="choices"),
    DatePicker(value="2024-01-15", min_date="2024-01-01", max_date="2024-12-31", title="date", name="date"),
    ColorPicker(color="#336699", title="colour", name="colour"),
    Spinner(low=0, high=10, step=0.5, value=2.5, title="spinner", name="spinner"),
    Switch(active=False, name="switch"),
]
PROPERTY = {"toggle": "active", "checkbox": "active", "radio": "active", "colour": "color", "switch": "active"}

for widget in widgets:
    prop = PROPERTY.get(widget.name, "value")
    widget.on_change(prop, lambda attr, old, new, name=widget.name: write(f"{name}={new}"))

curdoc().add_root(row(column(button, dropdown, *widgets), log))
curdoc().title = "Widget gallery"
