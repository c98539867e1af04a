"""PATCH-DOC messages in and out without a map of every model of the document per message.

To apply a client's PATCH-DOC, bokeh maps every model's id to the model (reading each model's
``id`` in Python); to write one, it builds the set of the document's synced models and a
reference for each. A slider move touches two models, yet a 37-model document paid ~35 us per
round trip and a 2,000-model one ~1.8 ms. Here the incoming map is a C-level copy of the
document's own id index, and the outgoing serializer asks the document whether a model it meets
is synced when it meets it. The messages and the document state are bokeh's
(``tests/unit/test_compat_patch_references.py``); a patch to a model removed meanwhile is dropped with a
debug line here, where bokeh 3.6 logs a warning on the root logger.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bokeh.core.serialization import Deserializer, Serializer, UnknownReferenceError
from bokeh.document.document import Document
from bokeh.document.events import DocumentPatchedEvent
from bokeh.model import Model
from bokeh.protocol.messages.patch_doc import patch_doc

if TYPE_CHECKING:
    from bokeh.document.models import DocumentModelManager

logger = logging.getLogger(__name__)

__all__ = ("SHORTCUTS",)

_bokeh_apply_json_patch = Document.apply_json_patch
_bokeh_create = vars(patch_doc)["create"]


class _SyncedSerializer(Serializer):
    """A serializer whose references are the document's synced models, looked up as met.

    bokeh's own takes them as a set it turns into a ``{id(model): model.ref}`` dict up front.
    The document does not change while a message is encoded, so asking it then gives the same.
    """

    def __init__(self, models: DocumentModelManager) -> None:
        super().__init__()
        self._by_id = models._models
        self._unsynced = models._new_models

    def _synced(self, obj: Any) -> bool:
        return isinstance(obj, Model) and self._by_id.get(obj.id) is obj and obj not in self._unsynced

    def has_ref(self, obj: Any) -> bool:
        return id(obj) in self._references or self._synced(obj)

    def get_ref(self, obj: Any) -> Any:
        ref = self._references.get(id(obj))
        if ref is None and self._synced(obj):
            return obj.ref
        return ref


def _create(cls: type[patch_doc], events: list[DocumentPatchedEvent], **metadata: Any) -> patch_doc:
    header = cls.create_header()  # first, as bokeh does: ids are handed out in the same order
    if not events:
        raise ValueError("PATCH-DOC message requires at least one event")
    documents = {event.document for event in events}
    if len(documents) != 1:
        raise ValueError("PATCH-DOC message configured with events for more than one document")
    [document] = documents
    serializer = _SyncedSerializer(document.models)
    content = {"events": serializer.encode(events)}
    document.models.flush_synced(lambda model: not serializer.has_ref(model))
    message = cls(header, metadata, content)
    for buffer in serializer.buffers:
        message.add_buffer(buffer)
    return message


def _apply_json_patch(self: Document, patch_json: Any, *, setter: Any = None) -> None:
    deserializer = Deserializer(setter=setter)
    deserializer._references = dict(self.models._models)  # what bokeh's {model.id: model} holds
    try:
        patch = deserializer.deserialize(patch_json)
    except UnknownReferenceError as error:
        if not self.models.seen(error.id):
            raise
        # a model one side removed while the other side's change to it was on the way
        logger.debug("Dropping a patch that refers to the removed model %r", error.id)
        return
    for event in patch["events"]:
        DocumentPatchedEvent.handle_event(self, event, setter)
    self.models.flush_synced(lambda model: not deserializer.has_ref(model))


SHORTCUTS = (
    (patch_doc, "create", _bokeh_create, classmethod(_create)),
    (Document, "apply_json_patch", _bokeh_apply_json_patch, _apply_json_patch),
)
