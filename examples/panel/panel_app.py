"""A Panel app: a slider and a text input drive a Markdown pane, with Panel's server-side state.

Serve it with ``manage.py runbokeh examples/panel/panel_app.py`` (needs ``pip install bokehserver[panel]``).
It uses ``pn.state.onload``, ``pn.state.add_periodic_callback``, ``pn.state.cache`` and a
``FastListTemplate``, the parts of Panel that need a server.
"""
import panel as pn

pn.extension()

visits = pn.state.cache.setdefault("visits", {"count": 0})
visits["count"] += 1

slider = pn.widgets.IntSlider(name="Count", start=0, end=10, value=3)
text = pn.widgets.TextInput(name="Word", value="panel")
output = pn.pane.Markdown("", name="output")
ticks = pn.pane.Str("ticks: 0", name="ticks")
loaded = pn.pane.Str("loading", name="loaded")


def render(count: int, word: str) -> str:
    return f"output: {' '.join([word] * count)}"


def update(*events: object) -> None:
    output.object = render(slider.value, text.value)


slider.param.watch(update, "value")
text.param.watch(update, "value")
update()

tick_count = {"n": 0}


def tick() -> None:
    tick_count["n"] += 1
    ticks.object = f"ticks: {tick_count['n']}"


def on_load() -> None:
    loaded.object = f"loaded, session {visits['count']}"
    pn.state.add_periodic_callback(tick, period=200, count=5)


pn.state.onload(on_load)

template = pn.template.FastListTemplate(title="bokehserver and Panel", sidebar=[slider, text])
template.main.append(pn.Column(output, ticks, loaded))
template.servable()
