"""The lists, dicts and sets models hold keep their owners in a slot and notify them as bokeh's do."""
from __future__ import annotations

import pytest
from bokeh.core.property.wrappers import (
    PropertyValueColumnData,
    PropertyValueDict,
    PropertyValueList,
    PropertyValueSet,
)
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Div, Plot

from bokehserver._compat.fast_models import bokehs_own_models


def test_a_models_containers_are_bokehs_without_a_dict_each():
    source = ColumnDataSource(data={"x": [1, 2]})
    div = Div(tags=["a"], styles={"color": "red"})
    plot = Plot()
    held = [
        (source, "data", PropertyValueColumnData),
        (div, "tags", PropertyValueList),
        (div, "styles", PropertyValueDict),
        (plot, "extra_x_ranges", PropertyValueDict),
        (div, "subscribed_events", PropertyValueSet),
    ]
    for model, name, bokehs in held:
        value = getattr(model, name)
        assert isinstance(value, bokehs), name
        assert value._owners == ((model, type(model).lookup(name)),), name
        assert vars(value) == {}, name  # bokeh's keep a set in a __dict__ of their own


def changes_seen(build_and_mutate) -> list[tuple[str, str, object]]:
    seen: list[tuple[str, str, object]] = []
    build_and_mutate(lambda who: lambda attr, old, new: seen.append((who, attr, list(new) if isinstance(new, list) else new)))
    return seen


def share_and_mutate(callback) -> None:
    first, second = Div(), Div()
    first.on_change("tags", callback("first"))
    second.on_change("tags", callback("second"))
    first.tags = ["a"]
    second.tags = first.tags  # one container, two owners
    first.tags.append("b")
    second.tags = ["c"]  # the shared container loses an owner
    first.tags.append("d")


def stream_and_patch(callback) -> None:
    doc = Document()
    source = ColumnDataSource(data={"x": [1, 2]})
    doc.add_root(source)
    source.on_change("data", callback("source"))
    source.data.update(y=[3, 4])
    source.stream({"x": [5], "y": [6]})
    source.patch({"x": [(0, 9)]})


@pytest.mark.parametrize("mutate", [share_and_mutate, stream_and_patch])
def test_mutations_reach_the_owners_bokeh_notifies(mutate):
    ours = changes_seen(mutate)
    with bokehs_own_models():
        bokehs = changes_seen(mutate)
    # the owners of one container are told in the order of bokeh's set of them: no order at all
    assert sorted(ours, key=repr) == sorted(bokehs, key=repr)
    assert ours
