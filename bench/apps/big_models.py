"""Benchmark app: a document of exactly 2,000 models (a column of rows of small widgets).

The root Column holds 39 Rows of up to 51 widgets (Div, Slider, Button, TextInput in turn),
1,960 widgets in all, named "w0" ... "w1959": 1 + 39 + 1,960 = 2,000 models.
"""
from bokeh.io import curdoc
from bokeh.models import Button, Column, Div, Row, Slider, TextInput

WIDGETS, PER_ROW = 1960, 51
MODELS = 1 + -(-WIDGETS // PER_ROW) + WIDGETS  # root + rows + widgets


def widget(i: int):
    name = f"w{i}"
    kind = i % 4
    if kind == 0:
        return Div(name=name, text=f"<b>item {i}</b>")
    if kind == 1:
        return Slider(name=name, title=f"slider {i}", start=0, end=100, value=i % 100, step=1)
    if kind == 2:
        return Button(name=name, label=f"button {i}")
    return TextInput(name=name, title=f"input {i}", value=str(i))


widgets = [widget(i) for i in range(WIDGETS)]
rows = [Row(children=widgets[start:start + PER_ROW], name=f"row{start // PER_ROW}") for start in range(0, WIDGETS, PER_ROW)]
curdoc().add_root(Column(children=rows, name="root"))
curdoc().title = "2,000 models"
