"""PATCH-DOC messages made and applied with the shortcut are bokeh's, and leave the document as bokeh's do."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from bokeh.core.serialization import Serializer, UnknownReferenceError
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Div, Slider, Title
from bokeh.plotting import figure
from bokeh.protocol import Protocol
from bokeh.protocol.messages.patch_doc import patch_doc

from bokehserver._compat import patch_references
from bokehserver._compat.fast_models import bokehs_own_models

protocol = Protocol()


def twin_documents() -> tuple[Document, Document]:
    """Two documents with the same models under the same ids, both synced (as after a pull)."""
    source = ColumnDataSource(data={"x": np.arange(5.0), "y": np.zeros(5)}, name="source")
    plot = figure(name="plot", title="t")
    plot.line("x", "y", source=source)
    doc = Document()
    doc.add_root(plot)
    doc.add_root(Slider(name="slider", start=0, end=10, value=1))
    json = doc.to_json(deferred=False)
    twins = Document.from_json(json), Document.from_json(json)
    for twin in twins:
        twin.models.flush_synced()
    return twins


def without_ids(text: str) -> str:
    """Message content with buffer ids (made per message) blanked out."""
    return re.sub(r'"data":\{"id":"p\d+"\}', '"data":{"id":"-"}', text)


def outgoing(doc: Document, change) -> tuple[str, set[str]]:
    """The content of the PATCH-DOC a change makes, and the ids of the models still unsynced after it."""
    events = []
    doc.on_change(lambda event: events.append(event))
    change(doc)
    content = without_ids(protocol.create("PATCH-DOC", [events[-1]]).content_json)
    unsynced = {model.id for model in doc.models._new_models}
    new = doc.get_model_by_name("new")  # made in each twin under an id of its own
    if new is not None:
        content = content.replace(new.id, "new")
        unsynced = {"new" if id == new.id else id for id in unsynced}
    return content, unsynced


CHANGES = {
    "a value": lambda doc: setattr(doc.get_model_by_name("slider"), "value", 7),
    "an array": lambda doc: setattr(doc.get_model_by_name("source"), "data", {"x": np.arange(5.0), "y": np.ones(5)}),
    "a new model": lambda doc: setattr(doc.get_model_by_name("plot"), "title", Title(text="new", name="new")),
    "a model added but not sent yet": lambda doc: doc.add_root(Div(text="later", name="new")),
}


def test_the_shortcut_is_installed():
    assert vars(patch_doc)["create"] is patch_references.SHORTCUTS[0][3]
    assert Document.apply_json_patch is patch_references._apply_json_patch


@pytest.mark.parametrize("change", CHANGES)
def test_an_outgoing_patch_is_bokehs(change):
    ours_doc, bokehs_doc = twin_documents()
    ours = outgoing(ours_doc, CHANGES[change])
    with bokehs_own_models():
        bokehs = outgoing(bokehs_doc, CHANGES[change])
    assert ours == bokehs
    if change == "a new model":
        assert '"type":"object","name":"Title"' in ours[0]  # defined in full, not referred to
    if change == "a model added but not sent yet":
        assert '"type":"object","name":"Div"' in ours[0]


def test_a_new_model_is_defined_once_then_referred_to():
    doc, _ = twin_documents()
    title = Title(text="new")
    first = outgoing(doc, lambda d: setattr(d.get_model_by_name("plot"), "title", title))[0]
    plot = doc.get_model_by_name("plot")
    again = outgoing(doc, lambda d: setattr(plot, "below", [*plot.below, title]))[0]
    assert '"name":"Title"' in first and '"name":"Title"' not in again
    assert f'{{"id":"{title.id}"}}' in again


def incoming(doc: Document, content: dict) -> tuple[dict, set[str]]:
    message = protocol.assemble(*_fragments(content))
    message.apply_to_document(doc)
    return doc.to_json(deferred=False), {model.id for model in doc.models._new_models}


def _fragments(content: dict) -> tuple[str, str, str]:
    return json.dumps({"msgid": "m1", "msgtype": "PATCH-DOC"}), "{}", json.dumps(content)


def slider_event(doc: Document, new) -> dict:
    slider = doc.get_model_by_name("slider")
    return {"events": [{"kind": "ModelChanged", "model": {"id": slider.id}, "attr": "title", "new": new}]}


def test_an_incoming_patch_leaves_the_document_as_bokehs_does():
    ours_doc, bokehs_doc = twin_documents()
    plot_title = ours_doc.get_model_by_name("plot").title.id
    new_model = {"type": "object", "name": "Title", "id": "c1", "attributes": {"text": "from the client"}}
    content = {"events": [
        {"kind": "ModelChanged", "model": {"id": ours_doc.get_model_by_name("slider").id}, "attr": "value", "new": 3},
        {"kind": "ModelChanged", "model": {"id": ours_doc.get_model_by_name("plot").id}, "attr": "title", "new": new_model},
    ]}
    ours = incoming(ours_doc, content)
    with bokehs_own_models():
        bokehs = incoming(bokehs_doc, content)
    assert ours == bokehs
    assert ours_doc.get_model_by_id("c1").text == "from the client"
    assert ours_doc.get_model_by_id(plot_title) is None


def test_a_patch_to_an_unknown_model_is_refused_and_to_a_removed_one_dropped():
    doc, _ = twin_documents()
    with pytest.raises(UnknownReferenceError):
        incoming(doc, slider_event(doc, {"id": "never-seen"}))
    slider = doc.get_model_by_name("slider")
    doc.remove_root(slider)
    before = doc.to_json(deferred=False)
    incoming(doc, {"events": [{"kind": "ModelChanged", "model": {"id": slider.id}, "attr": "value", "new": 2}]})
    assert doc.to_json(deferred=False) == before


def test_the_serializer_knows_the_synced_models_as_bokehs_does():
    doc, _ = twin_documents()
    doc.add_root(Div(text="not sent yet"))
    lazy = patch_references._SyncedSerializer(doc.models)
    with bokehs_own_models():
        eager = Serializer(references=doc.models.synced_references)
    for model in [*doc.models, Div(), "text", 1.5]:
        assert lazy.has_ref(model) == eager.has_ref(model), model
        assert lazy.get_ref(model) == eager.get_ref(model), model
