"""bokeh's settings read without the cost of looking where nothing is set.

bokeh reads a setting at every id it makes (``simple_ids``, twice per outgoing message with
buffers) and at every JSON fragment it writes (``pretty``). Each read copies three config dicts
and asks ``os.environ`` for two absent variables, each absence a raised and caught KeyError:
~4 us, some 30 us of a slider round trip. The shortcut answers the common case (nothing set
anywhere: no immediate or user value, no config entry, no environment variable, no
``BOKEH_DEV`` where a dev default exists) with the setting's own default, and hands every other
case to bokeh's own lookup, so the answer is always bokeh's.
"""
from __future__ import annotations

import os
from typing import Any

import bokeh.core.serialization as _core_serialization
import bokeh.document.document as _document
import bokeh.model.model as _model
import bokeh.util.serialization as _serialization
from bokeh.settings import PrioritizedSetting, _Unset, settings as _settings

__all__ = ("SHORTCUTS",)

_bokeh_call = PrioritizedSetting.__call__
_environ = os.environ._data  # type: ignore[attr-defined]  # what os.environ reads and writes through
_keys: dict[str, Any] = {}


def _key(name: str) -> Any:
    key = _keys.get(name)
    if key is None:
        key = _keys[name] = os.environ.encodekey(name)  # type: ignore[attr-defined]
    return key


def _is_set_anywhere(setting: PrioritizedSetting[Any]) -> bool:
    parent, name = setting._parent, setting._name
    if parent is not None and (name in parent._config_override or name in (parent._config_user or ())
                               or name in parent._config_system):
        return True
    if setting._env_var and _key(setting._env_var) in _environ:
        return True
    return setting._dev_default is not _Unset and _key("BOKEH_DEV") in _environ


def _call(self: PrioritizedSetting[Any], value: Any = None, default: Any = _Unset) -> Any:
    if (value is None and default is _Unset and self._user_value is _Unset and self._default is not _Unset
            and not _is_set_anywhere(self)):
        return self._convert(self._default)
    return _bokeh_call(self, value, default)


def _make_id() -> str:
    """bokeh's ``make_id`` (same counter, same lock) without importing ``ID`` at every call."""
    if _settings.simple_ids():
        with _serialization._simple_id_lock:
            _serialization._simple_id += 1
            return f"p{_serialization._simple_id}"
    return _serialization.make_globally_unique_id()


_bokeh_make_id = _serialization.make_id

SHORTCUTS = (
    (PrioritizedSetting, "__call__", _bokeh_call, _call),
    # bokeh's modules on the paths of every message and model hold make_id under their own names
    *((module, "make_id", _bokeh_make_id, _make_id)
      for module in (_serialization, _core_serialization, _model, _document)
      if vars(module).get("make_id") is _bokeh_make_id),
)
