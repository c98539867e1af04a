"""A Bokeh extension for tests: a model whose BokehJS code ships in ``dist/``, as Panel's does."""
from bokeh.models import Div


class TinyDiv(Div):
    """A Div under another name, so that a page bundles this extension."""
