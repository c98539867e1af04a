"""A Bokeh app on Django models: a form adds measurements, a plot shows them, for every viewer.

Plain Django ORM calls in modify_doc, in a button's handler and in a periodic refresh: the
server runs this synchronous code off its event loop, as Django runs a view.
"""
from bokeh.io import curdoc
from bokeh.layouts import column, row
from bokeh.models import Button, ColumnDataSource, Div, NumericInput, TextInput
from bokeh.plotting import figure

from examples.measurements.models import Measurement


def load() -> dict:
    rows = list(Measurement.objects.order_by("id").values_list("id", "value", "label"))
    return {
        "id": [r[0] for r in rows],
        "value": [r[1] for r in rows],
        "label": [r[2] for r in rows],
    }


source = ColumnDataSource(name="source", data=load())
count = Div(name="count", text=f"{len(source.data['id'])} measurements")
value = NumericInput(name="value", title="Value", value=1.0, mode="float")
label = TextInput(name="label", title="Label", value="sample")
add = Button(name="add", label="Add measurement", button_type="primary")

plot = figure(name="plot", height=300, width=600, title="Measurements", x_axis_label="id", y_axis_label="value",
              tools="hover", tooltips=[("label", "@label"), ("value", "@value")])
plot.scatter("id", "value", source=source, size=8)
plot.line("id", "value", source=source)


def refresh() -> None:
    data = load()
    if data["id"] != list(source.data["id"]):
        source.data = data
    count.text = f"{len(data['id'])} measurements"


def on_add(event) -> None:
    if value.value is None:
        return
    Measurement.objects.create(value=float(value.value), label=label.value or "sample")
    refresh()


add.on_click(on_add)
curdoc().add_periodic_callback(refresh, 2000)
curdoc().add_root(row(column(label, value, add, count), plot))
curdoc().title = "Measurements"
