"""Property value containers without a per-container ``__dict__`` and owner set.

bokeh wraps each list, dict and set a model holds in a ``PropertyValueContainer`` that keeps its
owners in ``self._owners = set()``: an instance ``__dict__`` (~330 bytes) and a set (~220) for what
is one (model, property) pair nearly always. A sliders session holds ~45 of them, a quarter of its
Python memory. These subclasses keep the owners in a slot, as a tuple, and bokeh's ``wrap`` of
each container property makes them; everything else (notifications, serialization, copies) is
bokeh's, and ``isinstance`` checks against bokeh's classes still hold.
"""
from __future__ import annotations

from typing import Any

from bokeh.core.property import container as _container
from bokeh.core.property import wrappers as _wrappers

__all__ = ("SHORTCUTS",)


class _SlimOwners:
    """The owners as a tuple in a slot; the same answers as bokeh's set (the order of owners kept as added)."""

    __slots__ = ()
    _owners: tuple[tuple[Any, Any], ...]

    def _register_owner(self, owner: Any, descriptor: Any) -> None:
        if (owner, descriptor) not in self._owners:
            self._owners = (*self._owners, (owner, descriptor))

    def _unregister_owner(self, owner: Any, descriptor: Any) -> None:
        self._owners = tuple(pair for pair in self._owners if pair != (owner, descriptor))


class PropertyValueList(_SlimOwners, _wrappers.PropertyValueList):
    __slots__ = ("_owners",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        list.__init__(self, *args, **kwargs)
        self._owners = ()


class PropertyValueSet(_SlimOwners, _wrappers.PropertyValueSet):
    __slots__ = ("_owners",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        set.__init__(self, *args, **kwargs)
        self._owners = ()


class PropertyValueDict(_SlimOwners, _wrappers.PropertyValueDict):
    __slots__ = ("_owners",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        self._owners = ()


class PropertyValueColumnData(_SlimOwners, _wrappers.PropertyValueColumnData):
    __slots__ = ("_owners",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        self._owners = ()


def _list_wrap(self: Any, value: Any) -> Any:
    if isinstance(value, list) and not isinstance(value, _wrappers.PropertyValueList):
        return PropertyValueList(value)
    return value


def _set_wrap(self: Any, value: Any) -> Any:
    if isinstance(value, set) and not isinstance(value, _wrappers.PropertyValueSet):
        return PropertyValueSet(value)
    return value


def _dict_wrap(self: Any, value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, _wrappers.PropertyValueDict):
        return PropertyValueDict(value)
    return value


def _column_data_wrap(self: Any, value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, _wrappers.PropertyValueColumnData):
        return PropertyValueColumnData(value)
    return value


# (owner, name, bokeh's, ours), as fast_models lists its shortcuts
SHORTCUTS: tuple[tuple[Any, str, Any, Any], ...] = (
    (_container.List, "wrap", _container.List.wrap, _list_wrap),
    (_container.Set, "wrap", _container.Set.wrap, _set_wrap),
    (_container.Dict, "wrap", _container.Dict.wrap, _dict_wrap),
    (_container.ColumnData, "wrap", _container.ColumnData.wrap, _column_data_wrap),
)
