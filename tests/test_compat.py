"""_compat's replacements for bokeh internals must behave exactly as bokeh's own."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import PropertyDescriptor, UnsetValueError
from bokeh.document import Document
from bokeh.io.doc import curdoc, set_curdoc
from bokeh.model import Model
from bokeh.models import GlyphRenderer
from bokeh.protocol import Protocol
from bokeh.themes import built_in_themes

from bokehserver import _compat

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
    assert HasProps.properties_with_values is _compat._properties_with_values
    assert HasProps.themed_values is _compat._themed_values
    assert PropertyDescriptor.has_unstable_default is _compat._has_unstable_default
    assert HasProps._overridden_defaults.__func__ is _compat._overridden_defaults


def test_per_class_answers_are_bokehs():
    classes = instantiable_models()
    for cls in classes:
        model = cls()
        assert dict(cls._overridden_defaults()) == _compat._bokeh_overridden_defaults(cls), cls
        for name in cls.properties():
            descriptor = cls.lookup(name)
            if isinstance(descriptor, PropertyDescriptor):
                assert descriptor.has_unstable_default(model) == _compat._bokeh_has_unstable_default(descriptor, model)


def test_themed_values_are_bokehs():
    model = GlyphRenderer()
    assert model.themed_values() is None is _compat._bokeh_themed_values(model)
    model.apply_theme({"visible": False})
    assert model.themed_values() == {"visible": False} == _compat._bokeh_themed_values(model)
    model.unapply_theme()
    assert model.themed_values() is None


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
    return result, sorted(obj._unstable_default_values)


def test_every_bokeh_model_serializes_the_same_properties_with_the_same_side_effects():
    classes = instantiable_models()
    assert len(classes) > 300
    raised = 0
    for cls in classes:
        theirs, ours = cls(), cls()
        for attempt in (1, 2):  # the second call sees the unstable defaults the first one made
            with _compat.bokehs_own_models():
                expected = serialized(theirs)
            assert serialized(ours) == expected, (cls, attempt)
            raised += expected[0][0] == "raised"
    assert raised > 0  # models with a required property left unset raise in both


def test_a_required_property_without_value_still_raises():
    with _compat.bokehs_own_models(), pytest.raises(UnsetValueError):
        GlyphRenderer().properties_with_values(include_defaults=False)
    with pytest.raises(UnsetValueError):
        GlyphRenderer().properties_with_values(include_defaults=False)


def test_include_defaults_is_bokehs_own():
    with _compat.bokehs_own_models():
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
        doc.theme = built_in_themes[theme]
    return doc


@pytest.mark.parametrize("theme", [None, "dark_minimal"])
@pytest.mark.parametrize("path", APPS, ids=lambda p: p.stem)
def test_a_whole_document_serializes_byte_for_byte_as_bokeh_does(path, theme):
    previous = curdoc()
    try:
        with _compat.bokehs_own_models():
            theirs = build(path, theme)
            expected = [normalized_pull(theirs), normalized_pull(theirs)]
        ours = build(path, theme)
        assert [normalized_pull(ours), normalized_pull(ours)] == expected
    finally:
        set_curdoc(previous)
