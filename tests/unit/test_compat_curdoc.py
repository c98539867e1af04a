"""curdoc() inside the callbacks bokeh dispatches is what bokeh makes it, bound or not."""
from __future__ import annotations

from bokeh.document import Document
from bokeh.document.callbacks import invoke_with_curdoc
from bokeh.document.locking import UnlockedDocumentProxy, without_document_lock
from bokeh.io import curdoc
from bokeh.models import Slider

from bokehserver._compat import bind_curdoc, curdoc as compat_curdoc
from bokehserver._compat.fast_models import bokehs_own_models


def seen_by(doc: Document) -> list:
    seen = []
    invoke_with_curdoc(doc, lambda: seen.append(curdoc()))
    return seen


def test_the_shortcut_is_installed():
    import bokeh.document.callbacks as callbacks

    assert callbacks.invoke_with_curdoc is compat_curdoc._invoke_with_curdoc


def test_a_callback_sees_its_document_bound_or_not():
    doc, other = Document(), Document()
    assert seen_by(doc) == [doc]
    with bind_curdoc(doc):
        assert seen_by(doc) == [doc]
        assert seen_by(other) == [other]  # another document is bound for the call only
        assert curdoc() is doc


def test_an_unlocked_callback_sees_the_proxy_even_where_its_document_is_bound():
    doc, seen = Document(), []

    @without_document_lock
    def unlocked():
        seen.append(curdoc())

    with bind_curdoc(doc):
        invoke_with_curdoc(doc, unlocked)
    [proxy] = seen
    assert isinstance(proxy, UnlockedDocumentProxy)


def test_on_change_handlers_run_with_their_document_as_under_bokeh():
    for own in (False, True):
        doc = Document()
        slider = Slider(start=0, end=10, value=1)
        doc.add_root(slider)
        seen = []
        slider.on_change("value", lambda attr, old, new: seen.append(curdoc()))
        doc.on_change(lambda event: seen.append(curdoc()))
        with bind_curdoc(doc):
            if own:
                with bokehs_own_models():
                    slider.value = 2
            else:
                slider.value = 2
        assert seen == [doc, doc], own
