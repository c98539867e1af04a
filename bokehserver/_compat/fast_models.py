"""Faster building and serializing of bokeh models, with bokeh's results.

bokeh recomputes per model what is fixed per class (default overrides along the MRO, which
defaults are unstable), computes every default to serialize only the set ones, and makes every
container default (empty lists, dicts and sets, ~250 in a small app) at construction. A server
building and serializing a document per session pays all of it, so these shortcuts do the class
work once, skip defaults nobody serializes, and make an empty container default on first read;
``containers`` makes the lists, dicts and sets models hold lighter.
``tests/test_fast_models.py`` holds each one to bokeh's own, which ``bokehs_own_models()`` restores.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import bokeh.core.has_props as _has_props_module
import bokeh.model.model as _model_module
import bokeh.model.util as _model_util
from bokeh.core.has_props import HasProps
from bokeh.core.property.bases import ContainerProperty
from bokeh.core.property.descriptors import PropertyDescriptor
from bokeh.core.property.instance import InstanceDefault
from bokeh.core.property.singletons import Intrinsic, Undefined
from bokeh.core.property.wrappers import PropertyValueContainer

from .containers import SHORTCUTS as _CONTAINER_SHORTCUTS
from .curdoc import SHORTCUTS as _CURDOC_SHORTCUTS
from .data_models import SHORTCUTS as _DATA_MODEL_SHORTCUTS
from .patch_references import SHORTCUTS as _PATCH_SHORTCUTS
from .settings_reads import SHORTCUTS as _SETTINGS_SHORTCUTS
from .versions import proven

__all__ = ("bokehs_own_models", "install_fast_models")

_bokeh_init = HasProps.__init__
_bokeh_properties_with_values = HasProps.properties_with_values
_bokeh_overridden_defaults = HasProps._overridden_defaults.__func__  # type: ignore[attr-defined]
_bokeh_has_unstable_default = PropertyDescriptor.has_unstable_default
_bokeh_themed_values = HasProps.themed_values
_bokeh_apply_theme = HasProps.apply_theme
_bokeh_set_from_json = HasProps.set_from_json
_bokeh_trigger = PropertyDescriptor._trigger
_bokeh_visit_references = _model_util.visit_immediate_value_references
_visit_value = _model_util.visit_value_and_its_immediate_references

_FACTS = "_bokehserver_class_facts"


class _ClassFacts:
    """What bokeh would work out again for every model of one class.

    Kept on the class itself, so classes an app defines per session take theirs with them.
    """

    __slots__ = ("overrides", "unstable", "serial", "eager", "deferred", "plain")

    def __init__(self, cls: type[HasProps]) -> None:
        self.overrides: Mapping[str, Any] = MappingProxyType(_bokeh_overridden_defaults(cls))
        self.unstable: dict[PropertyDescriptor, bool] = {}
        # unstable defaults a new model makes at once (models, non-empty containers), in bokeh's order
        self.eager: list[tuple[str, PropertyDescriptor]] = []
        # property -> the property holding its value (aliases), for empty containers made on first read
        self.deferred: dict[str, str] = {}
        # each serialized property in bokeh's order, and whether reading its unset default matters
        self.serial: list[tuple[str, PropertyDescriptor, bool]] = []
        # properties that may refer to models but whose unset value (the class's stable default) holds none
        self.plain: set[str] = set()
        for name in cls.properties(_with_props=True):
            descriptor = cls.lookup(name)
            target = getattr(descriptor, "aliased_name", name)  # an alias answers for what it aliases
            holder = cls.lookup(target)
            # bokeh's test reads only the class's __overridden_defaults__, so the class serves as the model
            unstable = _bokeh_has_unstable_default(holder, cls)
            if unstable:
                if self._starts_empty(cls, holder):
                    self.deferred[name] = target
                else:
                    self.eager.append((name, descriptor))
            elif target == name and descriptor.property.has_ref and self._holds_no_model(cls, descriptor):
                self.plain.add(name)
            if descriptor.serialized:
                default = self.overrides.get(name, descriptor.property._default)
                # a made default is stored on the model (unstable) or raises (missing); an empty
                # container that nobody read is left out of the serialization whether made or not
                matters = name not in self.deferred and (
                    unstable or descriptor.is_unstable(default) or default is Undefined
                )
                self.serial.append((name, descriptor, matters))

    def _starts_empty(self, cls: type[HasProps], descriptor: PropertyDescriptor) -> bool:
        """Whether the default is an empty container: nothing serialized, no models referenced."""
        prop = descriptor.property
        if not isinstance(prop, ContainerProperty):
            return False
        default = self.overrides.get(descriptor.name, prop._default)
        if isinstance(default, InstanceDefault):
            return False
        try:
            value = prop.prepare_value(cls, descriptor.name, prop._copy_default(default))
        except Exception:
            return False
        return isinstance(value, PropertyValueContainer) and len(value) == 0


    def _holds_no_model(self, cls: type[HasProps], descriptor: PropertyDescriptor) -> bool:
        """Whether the stable default a model reads for this property refers to no model."""
        prop = descriptor.property
        default = self.overrides.get(descriptor.name, prop._default)
        if default is Undefined or callable(default) or descriptor.is_unstable(default):
            return False
        try:
            value = prop.prepare_value(cls, descriptor.name, prop._copy_default(default))
        except Exception:
            return False
        found: list[Any] = []
        _visit_value(value, found.append)
        return not found


def _facts(cls: type[HasProps]) -> _ClassFacts:
    facts = cls.__dict__.get(_FACTS)
    if facts is None:
        facts = _ClassFacts(cls)
        setattr(cls, _FACTS, facts)
    return facts


def _init(self: HasProps, **properties: Any) -> None:
    """``HasProps.__init__`` that leaves empty container defaults to their first read.

    bokeh makes every unstable default at once; the empty containers among them are two thirds of
    building a small app's document and of its memory, and most are never read.
    """
    super(HasProps, self).__init__()
    self._property_values = {}
    self._unstable_default_values = {}
    self._unstable_themed_values = {}
    for name, value in properties.items():
        if value is not Undefined and value is not Intrinsic:
            setattr(self, name, value)
    for name, descriptor in _facts(type(self)).eager:
        if name not in properties:
            descriptor._get(self)  # stores the made default on the model
    self._initialized = True


def _visit_immediate_value_references(value: Any, visitor: Callable[[Any], None]) -> None:
    """bokeh's walk over a model's references, without making the empty defaults nobody read, nor
    reading the unset properties whose default refers to no model."""
    if not isinstance(value, HasProps):
        _visit_value(value, visitor)
        return
    facts = _facts(type(value))
    themed = value.themed_values() or ()
    held = value._property_values
    for name in value.properties_with_refs():
        if name in facts.plain:
            if name not in held and name not in themed:
                continue  # its class's default, which holds no model
        else:
            target = facts.deferred.get(name)
            if target is not None and target not in held and target not in themed:
                continue  # still its empty default (an in-place change moves it to _property_values)
        _visit_value(getattr(value, name), visitor)


def _trigger(self: PropertyDescriptor, obj: HasProps, old: Any, value: Any, *,
             hint: Any = None, setter: Any = None) -> None:
    """``PropertyDescriptor._trigger`` that asks the class whether the object has ``trigger``.

    bokeh asks the object (``hasattr``): for a HasProps that is not a Model (the options of every
    ``figure()``) the miss goes through ``__getattr__``, which works out close-match suggestions
    for the error message that ``hasattr`` then throws away, three times per figure.
    """
    if getattr(type(obj), "trigger", None) is not None:
        obj.trigger(self.name, old, value, hint, setter)


_TRACE = 9  # bokeh.util.logconfig.TRACE


def _set_from_json(self: HasProps, name: str, value: Any, *, setter: Any = None) -> None:
    """``HasProps.set_from_json`` that writes its trace line only when trace logging is on.

    bokeh formats the line, with the repr of the whole value, before the logger looks at its level:
    for a client's column of a million floats, a second of C code that no other thread can interrupt.
    """
    if name not in self.properties(_with_props=True):
        _bokeh_set_from_json(self, name, value, setter=setter)  # bokeh's warning
        return
    log = _has_props_module.log
    if log.isEnabledFor(_TRACE):
        log.log(_TRACE, "Patching attribute %r of %r with %r", name, self, value)
    self.lookup(name).set_from_json(self, value, setter=setter)


# values bokeh's reference walk passes over without visiting anything
_PLAIN = frozenset((int, float, str, bool, type(None)))


def _visit_value_quickly(value: Any, visitor: Callable[[Any], None]) -> None:
    """bokeh's walk over a value's references, passing over a list of plain numbers or strings at C speed.

    A changed column of a million floats is checked item by item for models, old and new, at every
    change: seconds of interpreter time on the thread that applies a client's patch.
    """
    kind = type(value)
    if (kind is list or kind is tuple) and len(value) > 64 and set(map(type, value)) <= _PLAIN:
        return
    _visit_value(value, visitor)


def _properties_with_values(self: HasProps, *, include_defaults: bool = True, include_undefined: bool = False) -> dict[str, Any]:
    """``HasProps.properties_with_values`` that skips computing defaults nobody will serialize.

    bokeh's version computes every property's default (theme lookups, validation) and then drops
    the ones not set: nine tenths of a document's serialization time. Same result, same side
    effects (unstable defaults are still made and stored), same errors.
    """
    if include_defaults or include_undefined:
        return _bokeh_properties_with_values(self, include_defaults=include_defaults, include_undefined=include_undefined)
    unstable = self._unstable_default_values
    themed_values = self.themed_values()
    themed_keys = set(themed_values) if themed_values is not None else set()
    selected = self._property_values.keys() | unstable.keys() | themed_keys
    result: dict[str, Any] = {}
    for name, descriptor, matters in _facts(type(self)).serial:
        if name not in selected:
            if matters:
                descriptor.get_value(self)
            continue
        value = descriptor.get_value(self)
        if name not in themed_keys and isinstance(value, PropertyValueContainer) and name in unstable:
            continue
        result[name] = value
    return result


def _overridden_defaults(cls: type[HasProps]) -> Mapping[str, Any]:
    """bokeh's merge of the default overrides along the class's MRO, made once per class.

    bokeh merges them again at every read of a default (a quarter of building a document is
    reading defaults). Read-only, as bokeh's one caller uses it. Until the class's facts exist it
    is bokeh's own answer: working them out asks bokeh, which (3.10 on) asks this.
    """
    facts = cls.__dict__.get(_FACTS)
    return _bokeh_overridden_defaults(cls) if facts is None else facts.overrides


def _has_unstable_default(self: PropertyDescriptor, obj: HasProps) -> bool:
    """bokeh's answer (a walk over the property's type parameters), once per property and class.

    Every read of an unset default asks it.
    """
    known = _facts(type(obj)).unstable
    found = known.get(self)
    if found is None:
        found = known[self] = _bokeh_has_unstable_default(self, obj)
    return found


def _themed_values(self: HasProps) -> dict[str, Any] | None:
    """The theme's values for this model: bokeh's lookup goes through ``HasProps.__getattr__``
    and a raised AttributeError for every unthemed model, at every default read."""
    return self.__dict__.get("__themed_values__")


def _apply_theme(self: HasProps, property_values: dict[str, Any]) -> None:
    """``HasProps.apply_theme``, which for an empty theme on an unthemed model (every model a document
    without a theme attaches) ends in ``hasattr(self, "__themed_values__")``: an AttributeError whose
    message first ranks every property name by similarity."""
    if property_values or self.__dict__.get("__themed_values__") is not None:
        _bokeh_apply_theme(self, property_values)


_SHORTCUTS: tuple[tuple[Any, str, Any, Any], ...] = (
    (HasProps, "__init__", _bokeh_init, _init),
    (HasProps, "properties_with_values", _bokeh_properties_with_values, _properties_with_values),
    (HasProps, "_overridden_defaults", classmethod(_bokeh_overridden_defaults), classmethod(_overridden_defaults)),
    (HasProps, "themed_values", _bokeh_themed_values, _themed_values),
    (HasProps, "apply_theme", _bokeh_apply_theme, _apply_theme),
    (HasProps, "set_from_json", _bokeh_set_from_json, _set_from_json),
    (PropertyDescriptor, "has_unstable_default", _bokeh_has_unstable_default, _has_unstable_default),
    (PropertyDescriptor, "_trigger", _bokeh_trigger, _trigger),
    (_model_util, "visit_immediate_value_references", _bokeh_visit_references, _visit_immediate_value_references),
    # bokeh's walk recurses through the module's name; Model.trigger holds its own import of it
    (_model_util, "visit_value_and_its_immediate_references", _visit_value, _visit_value_quickly),
    *(((_model_module, "visit_value_and_its_immediate_references", _visit_value, _visit_value_quickly),)
      if vars(_model_module).get("visit_value_and_its_immediate_references") is _visit_value else ()),
    *_CONTAINER_SHORTCUTS,  # list, dict and set values without a __dict__ and an owner set each
    *_DATA_MODEL_SHORTCUTS,  # which classes are DataModels, once per class rather than per serialization
    *_PATCH_SHORTCUTS,  # PATCH-DOC in and out without an {id: model} map of the whole document
    *_SETTINGS_SHORTCUTS,  # bokeh's settings read without looking where nothing is set
    *_CURDOC_SHORTCUTS,  # callbacks run without binding curdoc() to the document it is bound to
)


@contextmanager
def bokehs_own_models() -> Iterator[None]:
    """bokeh's own versions of the shortcuts for the block: what the tests and benchmarks compare with."""
    installed = [(owner, name, vars(owner)[name]) for owner, name, _, _ in _SHORTCUTS]
    for owner, name, original, _ in _SHORTCUTS:
        setattr(owner, name, original)
    try:
        yield
    finally:
        for owner, name, current in installed:
            setattr(owner, name, current)


def install_fast_models() -> bool:
    """Build and serialize models with the shortcuts above, on the bokeh versions they were proven on.

    Same results as bokeh's own (idempotent). Returns whether they are installed.
    """
    if not proven("model shortcuts"):
        return False
    for owner, name, _, shortcut in _SHORTCUTS:
        setattr(owner, name, shortcut)
    return True
