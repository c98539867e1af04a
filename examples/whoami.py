"""Who is looking: the Django user of the page that opened this session, and a button that answers them."""
from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Button, Div

request = curdoc().session_context.request
user = getattr(request, "user", None)
name = user.get_username() if user is not None and user.is_authenticated else "anonymous"

greeting = Div(text=f"Hello, {name}", name="greeting")
answer = Div(text="", name="answer")
button = Button(label="Who am I?", name="ask")


def ask() -> None:
    answer.text = f"You are {name}."


button.on_click(ask)
curdoc().add_root(column(greeting, button, answer))
curdoc().title = "Who am I"
