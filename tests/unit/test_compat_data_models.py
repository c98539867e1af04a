"""A document serializes with the DataModel definitions bokeh gives it."""
from __future__ import annotations

import bokeh.document.document as document_module
from bokeh.core.has_props import _default_resolver, is_DataModel
from bokeh.core.properties import Int
from bokeh.document import Document
from bokeh.model import DataModel, Model
from bokeh.models import Div

from bokehserver._compat.fast_models import bokehs_own_models


def test_every_class_gets_bokehs_answer():
    for cls in Model.model_class_reverse_map.values():
        assert bool(document_module.is_DataModel(cls)) == bool(is_DataModel(cls)), cls
        assert bool(document_module.is_DataModel(cls)) == bool(is_DataModel(cls)), cls  # the kept answer


def test_a_data_model_defined_later_is_in_the_definitions():
    doc = Document()
    doc.add_root(Div(text="x"))
    assert "defs" not in doc.to_json(deferred=False)

    class Counted(DataModel):
        count = Int(3)

    class Sub(Counted):
        more = Int(4)

    try:
        ours = doc.to_json(deferred=False)
        with bokehs_own_models():
            bokehs = doc.to_json(deferred=False)
        assert [entry["name"] for entry in ours["defs"]] == [entry["name"] for entry in bokehs["defs"]]
        assert ours == bokehs
        assert len(ours["defs"]) == 2
    finally:
        _default_resolver.remove(Sub)
        _default_resolver.remove(Counted)
