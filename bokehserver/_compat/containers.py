"""Property value containers without a per-container ``__dict__`` and owner set.

bokeh wraps each list, dict and set a model holds in a ``PropertyValueContainer`` that keeps its
owners in ``self._owners = set()``: an instance ``__dict__`` (~330 bytes) and a set (~220) for what
is one (model, property) pair nearly always. A sliders session holds ~45 of them, a quarter of its
Python memory. These subclasses keep the owners in a slot, as a tuple, and bokeh's ``wrap`` of
each container property makes them; everything else (notifications, serialization, copies) is
bokeh's, and ``isinstance`` checks against bokeh's classes still hold.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from bokeh.core.property import container as _container
from bokeh.core.property import wrappers as _wrappers

__all__ = ("SHORTCUTS",)


class _SlimOwners:
    """The owners as a tuple in a slot; the same answers as bokeh's set (the order of owners kept as added)."""

    __slots__ = ()
    _owners: tuple[tuple[Any, Any], ...]
    _builtin: ClassVar[type]  # the builtin container under bokeh's class

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._builtin.__init__(self, *args, **kwargs)  # bokeh's own __init__ only adds its set of owners
        self._owners = ()

    def _register_owner(self, owner: Any, descriptor: Any) -> None:
        if (owner, descriptor) not in self._owners:
            self._owners = (*self._owners, (owner, descriptor))

    def _unregister_owner(self, owner: Any, descriptor: Any) -> None:
        self._owners = tuple(pair for pair in self._owners if pair != (owner, descriptor))


class PropertyValueList(_SlimOwners, _wrappers.PropertyValueList):
    __slots__ = ("_owners",)
    _builtin = list


class PropertyValueSet(_SlimOwners, _wrappers.PropertyValueSet):
    __slots__ = ("_owners",)
    _builtin = set


class PropertyValueDict(_SlimOwners, _wrappers.PropertyValueDict):
    __slots__ = ("_owners",)
    _builtin = dict


class PropertyValueColumnData(_SlimOwners, _wrappers.PropertyValueColumnData):
    __slots__ = ("_owners",)
    _builtin = dict


def _wrapping(builtin: type, bokehs: type, ours: type) -> Callable[[Any, Any], Any]:
    """A container property's ``wrap``: what bokeh wraps in ``bokehs``, wrapped in ``ours``."""

    def wrap(self: Any, value: Any) -> Any:
        if isinstance(value, builtin) and not isinstance(value, bokehs):
            return ours(value)
        return value

    return wrap


# (owner, name, bokeh's, ours), as fast_models lists its shortcuts
SHORTCUTS: tuple[tuple[Any, str, Any, Any], ...] = (
    (_container.List, "wrap", _container.List.wrap, _wrapping(list, _wrappers.PropertyValueList, PropertyValueList)),
    (_container.Set, "wrap", _container.Set.wrap, _wrapping(set, _wrappers.PropertyValueSet, PropertyValueSet)),
    (_container.Dict, "wrap", _container.Dict.wrap, _wrapping(dict, _wrappers.PropertyValueDict, PropertyValueDict)),
    (_container.ColumnData, "wrap", _container.ColumnData.wrap,
     _wrapping(dict, _wrappers.PropertyValueColumnData, PropertyValueColumnData)),
)
