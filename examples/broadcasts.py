"""Functions that may update every session of an app, in every server process (``bokehserver.broadcast``).

From a view, a management command or a Celery task::

    from bokehserver import broadcast_sync
    broadcast_sync("/relay_app", "examples.broadcasts.set_text", "echo", "hello")
"""
from bokehserver import updates_sessions


@updates_sessions
def set_text(doc, name, text):
    """Set the text of the model called ``name`` (a Div, a Paragraph) in one session's document."""
    model = doc.get_model_by_name(name)
    if model is not None:
        model.text = text


def not_marked(doc, name, text):
    """Not marked with ``updates_sessions``: a broadcast naming it is refused."""
    raise AssertionError("never run by a broadcast")
