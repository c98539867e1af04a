"""Main module of the ``dirapp`` directory application.

Bokeh runs this file afresh for every new session.  The rest of the
directory supplies what a single script cannot: ``server_lifecycle.py``
(hooks), ``templates/index.html`` (the page), ``static/`` (files served at
``/dirapp/static/``) and ``theme.yaml`` (default model styling).
"""
import json

import numpy as np

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div
from bokeh.plotting import curdoc, figure

doc = curdoc()


def request_arguments():
    """Return the session's query arguments as {name: [str, ...]}."""
    context = doc.session_context
    if context is None or context.request is None:
        return {}
    return {
        key: [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
        for key, values in context.request.arguments.items()
    }


x = np.linspace(0, 10, 100)
source = ColumnDataSource(data=dict(x=x, y=np.cos(x) * np.exp(-x / 5)), name="source")

plot = figure(name="plot", title="Damped cosine", height=300, width=600)
plot.line("x", "y", source=source, line_width=2)

greeting = Div(name="greeting", text="Hello from dirapp")
args = Div(name="args", text="args: " + json.dumps(request_arguments(), sort_keys=True))

doc.add_root(column(greeting, args, plot, name="layout"))
doc.title = "Directory app"
