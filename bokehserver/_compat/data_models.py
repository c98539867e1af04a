"""Which model classes are DataModels, answered once per class when a document is serialized.

``Document.to_json`` asks ``is_DataModel`` of every registered model class (~470) for every
serialization; each answer runs an import statement and an MRO walk, ~2.5 ms of a sliders
PULL-DOC-REPLY's ~6.5 ms. A class's answer is kept on the class itself (so classes an app
defines per session take theirs with them), for the serialization's use of the name only.
"""
from __future__ import annotations

from typing import Any

import bokeh.document.document as _document_module
from bokeh.core.has_props import HasProps

__all__ = ("SHORTCUTS",)

_bokeh_is_data_model = _document_module.is_DataModel
_ANSWER = "_bokehserver_is_data_model"
_UNKNOWN = object()


def _is_data_model(cls: type[HasProps]) -> Any:
    """bokeh's answer for ``cls``, worked out on the first question."""
    answer = cls.__dict__.get(_ANSWER, _UNKNOWN)
    if answer is _UNKNOWN:
        answer = _bokeh_is_data_model(cls)
        setattr(cls, _ANSWER, answer)
    return answer


# (owner, name, bokeh's, ours), as fast_models lists its shortcuts
SHORTCUTS: tuple[tuple[Any, str, Any, Any], ...] = (
    (_document_module, "is_DataModel", _bokeh_is_data_model, _is_data_model),
)
