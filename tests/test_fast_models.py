"""The fast model shortcuts must give what bokeh's own internals give."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

import bokeh.plotting  # noqa: F401  (figure and the other plotting models take part)
import pytest
from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import PropertyDescriptor, UnsetValueError
from bokeh.document import Document
from bokeh.io.doc import curdoc, set_curdoc
from bokeh.model import Model
from bokeh.models import ColumnDataSource, CustomJS, GlyphRenderer, Plot, Scatter
from bokeh.model.util import collect_models
from bokeh.protocol import Protocol
from bokeh.themes import Theme, built_in_themes

from bokehserver._compat import fast_models
from bokehserver._compat.fast_models import bokehs_own_models

ROOT = Path(__file__).resolve().parent.parent
APPS = [ROOT / "examples" / "sliders.py", ROOT / "examples" / "widgets.py", ROOT / "examples" / "streaming.py"]


def instantiable_models() -> list[type[Model]]:
    classes = []
    for cls in sorted(Model.model_class_reverse_map.values(), key=lambda c: c.__qualified_model__):
        try:
            cls()
        except Exception:
            continue
        classes.append(cls)
    return classes


def shape(values: dict) -> list[tuple[str, str]]:
    return [(key, type(value).__name__) for key, value in values.items()]


def test_the_app_installs_the_shortcuts():
    for owner, name, original, shortcut in fast_models._SHORTCUTS:
        assert vars(owner)[name] is shortcut is not original, name
        with bokehs_own_models():
            assert vars(owner)[name] is original


def test_per_class_answers_are_bokehs():
    classes = instantiable_models()
    for cls in classes:
        model = cls()
        assert dict(cls._overridden_defaults()) == fast_models._bokeh_overridden_defaults(cls), cls
        for name in cls.properties():
            descriptor = cls.lookup(name)
            if isinstance(descriptor, PropertyDescriptor):
                assert descriptor.has_unstable_default(model) == fast_models._bokeh_has_unstable_default(descriptor, model)


def test_the_unset_properties_the_walk_skips_refer_to_no_model():
    skipped = 0
    for cls in instantiable_models():
        model = cls()
        for name in fast_models._facts(cls).plain:
            assert name not in model._property_values, (cls, name)
            found: list = []
            fast_models._visit_value(getattr(model, name), found.append)
            assert found == [], (cls, name)
            skipped += 1
        with bokehs_own_models():
            try:
                theirs = {m.id for m in collect_models(model)}
            except UnsetValueError:  # a required property without a value: ours must say so too
                theirs = None
        if theirs is None:
            with pytest.raises(UnsetValueError):
                collect_models(model)
        else:
            assert {m.id for m in collect_models(model)} == theirs, cls
    assert skipped > 100


def test_themed_values_are_bokehs():
    model = GlyphRenderer()
    assert model.themed_values() is None is fast_models._bokeh_themed_values(model)
    model.apply_theme({"visible": False})
    assert model.themed_values() == {"visible": False} == fast_models._bokeh_themed_values(model)
    model.unapply_theme()
    assert model.themed_values() is None


def test_an_empty_theme_changes_what_bokehs_changes():
    def themed_twice() -> list[tuple[str, object, object]]:
        seen: list[tuple[str, object, object]] = []
        model = GlyphRenderer()
        model.on_change("visible", lambda attr, old, new: seen.append((attr, old, new)))
        model.apply_theme({})  # nothing to do on an unthemed model
        model.apply_theme({"visible": False})
        model.apply_theme({})  # takes the theme's value away again
        seen.append(("themed", model.themed_values(), model.visible))
        return seen

    with bokehs_own_models():
        bokehs = themed_twice()
    assert themed_twice() == bokehs == [("visible", True, False), ("visible", False, True), ("themed", None, True)]


def plain(value: object) -> object:
    """``value`` with models replaced by their type (two instances of a class differ in ids only)."""
    if isinstance(value, HasProps):
        return ("model", type(value).__qualified_model__)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(item) for item in value]
    return value


def serialized(obj: HasProps) -> tuple:
    """What ``properties_with_values`` gives for ``obj`` (or raises), and the defaults it made."""
    try:
        values = obj.properties_with_values(include_defaults=False)
    except UnsetValueError as exc:
        result: tuple = ("raised", str(exc).split(".")[-1])
    else:
        result = (shape(values), {key: plain(value) for key, value in values.items()})
    deferred = fast_models._facts(type(obj)).deferred  # ours makes these empty containers on first read
    return result, sorted(name for name in obj._unstable_default_values if name not in deferred)


def test_every_bokeh_model_serializes_the_same_properties_with_the_same_side_effects():
    classes = instantiable_models()
    assert len(classes) > 300
    raised = 0
    for cls in classes:
        theirs, ours = cls(), cls()
        deferred = fast_models._facts(cls).deferred.keys()
        made_by_init = ours._unstable_default_values.keys() & deferred  # e.g. figure places its toolbar
        for attempt in (1, 2):  # the second call sees the unstable defaults the first one made
            with bokehs_own_models():
                expected = serialized(theirs)
            assert serialized(ours) == expected, (cls, attempt)
            raised += expected[0][0] == "raised"
        assert ours._unstable_default_values.keys() & deferred == made_by_init, cls  # serializing made none
    assert raised > 0  # models with a required property left unset raise in both


def test_a_required_property_without_value_still_raises():
    with bokehs_own_models(), pytest.raises(UnsetValueError):
        GlyphRenderer().properties_with_values(include_defaults=False)
    with pytest.raises(UnsetValueError):
        GlyphRenderer().properties_with_values(include_defaults=False)


def test_include_defaults_is_bokehs_own():
    with bokehs_own_models():
        expected = shape(GlyphRenderer().properties_with_values(include_defaults=True, include_undefined=True))
    assert shape(GlyphRenderer().properties_with_values(include_defaults=True, include_undefined=True)) == expected
    assert ("glyph", "UndefinedType") in expected


def normalized_pull(doc: Document) -> str:
    """A PULL-DOC-REPLY's content with ids renamed in order of appearance (two builds differ only there)."""
    content = Protocol().create("PULL-DOC-REPLY", "", doc).content_json
    names: dict[str, str] = {}
    return re.sub(r'"(p\d+)"', lambda m: '"id%d"' % names.setdefault(m.group(1), len(names)), content)


def build(path: Path, theme: str | None) -> Document:
    doc = Document()
    set_curdoc(doc)
    runpy.run_path(str(path), run_name="bokeh_app")
    if theme is not None:
        doc.theme = THEMED_CONTAINER if theme == "themed_container" else built_in_themes[theme]
    return doc


THEMED_CONTAINER = Theme(json={"attrs": {"Model": {"tags": ["themed"]}, "Plot": {"renderers": []}}})


@pytest.mark.parametrize("theme", [None, "dark_minimal", "themed_container"])
@pytest.mark.parametrize("path", APPS, ids=lambda p: p.stem)
def test_a_whole_document_serializes_byte_for_byte_as_bokeh_does(path, theme):
    previous = curdoc()
    try:
        with bokehs_own_models():
            theirs = build(path, theme)
            expected = [normalized_pull(theirs), normalized_pull(theirs)]
        ours = build(path, theme)
        assert [normalized_pull(ours), normalized_pull(ours)] == expected
    finally:
        set_curdoc(previous)


def read_everything(obj: HasProps) -> dict:
    values = {}
    for name in sorted(obj.properties()):
        if not isinstance(obj.lookup(name), PropertyDescriptor):
            continue  # aliases read what they alias (and warn, for deprecated ones)
        try:
            value = getattr(obj, name)
        except UnsetValueError:
            value = "unset"
        values[name] = (type(value).__name__, plain(value))
    return values


def test_every_bokeh_model_reads_the_defaults_bokeh_makes():
    classes = instantiable_models()
    deferred = 0
    for cls in classes:
        with bokehs_own_models():
            theirs = cls()
            expected = read_everything(theirs), serialized(theirs)
        ours = cls()
        assert (read_everything(ours), serialized(ours)) == expected, cls
        # once read, an empty default is the model's own, as bokeh's are from the start
        assert sorted(ours._unstable_default_values) == sorted(theirs._unstable_default_values), cls
        deferred += len(fast_models._facts(cls).deferred)
    assert deferred > 1000


def test_an_empty_default_is_made_on_first_read_and_kept():
    plot = Plot()
    assert "renderers" not in plot._unstable_default_values
    renderers = plot.renderers
    assert renderers == [] and plot.renderers is renderers
    assert plot._unstable_default_values["renderers"] is renderers


def recorded_patches(build_and_change) -> list[str]:
    """The PATCH-DOC contents a change to a new document makes, with ids renamed in order."""
    doc = Document()
    plot = build_and_change(doc, None)
    patches = []
    doc.on_change(lambda event: patches.append(event))
    build_and_change(doc, plot)
    names: dict[str, str] = {}
    contents = [Protocol().create("PATCH-DOC", [event]).content_json for event in patches]
    rename = lambda m: '"id%d"' % names.setdefault(m.group(1), len(names))  # noqa: E731
    return [re.sub(r'"(p\d+)"', rename, content) for content in contents], sorted(type(m).__name__ for m in doc.models)


def grow_a_plot(doc: Document, plot: Plot | None) -> Plot:
    if plot is None:
        plot = Plot()
        doc.add_root(plot)
        return plot
    source = ColumnDataSource()
    source.data["x"] = [1, 2, 3]
    plot.renderers.append(GlyphRenderer(data_source=source, glyph=Scatter(x="x", y="x")))
    plot.tags.append("grown")
    plot.js_on_change("tags", CustomJS(code="console.log('tags')"))
    return plot


def test_changing_an_empty_default_in_place_patches_the_document_as_bokeh_does():
    with bokehs_own_models():
        expected = recorded_patches(grow_a_plot)
    patches, models = recorded_patches(grow_a_plot)
    assert (patches, models) == expected
    assert [re.search(r"\"attr\":\"(\w+)\"", patch).group(1) for patch in patches] == [
        "renderers", "tags", "js_property_callbacks", "js_property_callbacks"]
    assert "GlyphRenderer" in models and "ColumnDataSource" in models


def test_references_are_bokehs_and_skip_only_empty_defaults_nobody_read():
    with bokehs_own_models():
        theirs = Plot()
        expected = sorted(type(m).__name__ for m in collect_models(theirs))
    ours = Plot()
    assert sorted(type(m).__name__ for m in collect_models(ours)) == expected
    assert "renderers" not in ours._unstable_default_values  # the walk did not make it
    ours.renderers = [GlyphRenderer(data_source=ColumnDataSource(), glyph=Scatter())]
    assert {"GlyphRenderer", "Scatter", "ColumnDataSource"} <= {type(m).__name__ for m in collect_models(ours)}


def test_a_theme_can_put_models_in_an_empty_default():
    def themed_plot() -> tuple[Plot, GlyphRenderer]:
        renderer = GlyphRenderer(data_source=ColumnDataSource(), glyph=Scatter())
        plot = Plot()
        plot.apply_theme({"renderers": [renderer]})
        return plot, renderer

    with bokehs_own_models():
        plot, renderer = themed_plot()
        assert renderer in collect_models(plot)
    plot, renderer = themed_plot()
    assert renderer in collect_models(plot)


def test_the_reference_walk_finds_bokehs_models_and_passes_over_plain_columns():
    from bokeh.model.util import visit_value_and_its_immediate_references as walk
    from bokeh.models import Div

    inner, other = Div(text="a"), Div(text="b")
    value = {"x": [0.5] * 1000, "n": list(range(1000)), "s": ["t", None, True] * 100,
             "mixed": [1.0] * 100 + [inner], "nested": [[other] + [2] * 100], "t": tuple([3.0] * 100)}

    def found() -> list[str]:
        seen: list[str] = []
        walk(value, lambda model: seen.append(model.id))
        return seen

    assert walk is fast_models._visit_value_quickly
    ours = found()
    with bokehs_own_models():
        from bokeh.model import util

        seen: list[str] = []
        util.visit_value_and_its_immediate_references(value, lambda model: seen.append(model.id))
    assert ours == seen == [inner.id, other.id]


def test_a_long_list_that_brings_models_in_still_adds_them_to_the_document():
    from bokeh.models import Column, Div

    doc = Document()
    column = Column(children=[])
    doc.add_root(column)
    column.children = [Div(text=str(i)) for i in range(100)]
    assert sum(isinstance(m, Div) for m in doc.models) == 100


def test_set_from_json_sets_as_bokeh_does_without_formatting_an_unlogged_trace_line(caplog):
    import logging

    from bokeh.models import Div

    class Loud(str):
        formatted = 0

        def __repr__(self) -> str:
            Loud.formatted += 1
            return str.__repr__(self)

    ours, theirs = Div(), Div()
    ours.set_from_json("text", Loud("hello"))
    with bokehs_own_models():
        theirs.set_from_json("text", Loud("hello"))
    assert ours.text == theirs.text == "hello"
    assert Loud.formatted == 1  # bokeh's own formats the line; ours does not
    with caplog.at_level(9, logger="bokeh.core.has_props"):
        ours.set_from_json("text", Loud("again"))
    assert ours.text == "again" and "Patching attribute 'text'" in caplog.text
    with caplog.at_level(logging.WARNING, logger="bokeh.core.has_props"):
        ours.set_from_json("no_such_property", 1)
    assert "client-only or invalid attribute" in caplog.text


def test_setting_a_property_of_a_plain_hasprops_works_out_no_error_suggestions(monkeypatch):
    from bokeh.core.has_props import HasProps
    from bokeh.models import Div
    from bokeh.plotting import figure

    suggested = []
    original = HasProps._raise_attribute_error_with_matches

    def counted(self, name, properties):
        suggested.append(name)
        return original(self, name, properties)

    monkeypatch.setattr(HasProps, "_raise_attribute_error_with_matches", counted)
    changes = []
    div = Div(text="a")
    div.on_change("text", lambda attr, old, new: changes.append((old, new)))
    div.text = "b"
    ours = figure(x_range=(0, 1), title="t")
    assert suggested == []  # the options figure() sets have no trigger: asked of the class, not through __getattr__
    assert changes == [("a", "b")]  # models still notify
    with bokehs_own_models():
        theirs = figure(x_range=(0, 1), title="t")
    assert suggested  # bokeh's own asks the object and builds the suggestions
    assert ours.title.text == theirs.title.text and (ours.x_range.start, ours.x_range.end) == (0, 1)
