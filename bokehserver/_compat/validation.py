"""Validating a new session's document with bokeh's checks, found once per model class.

bokeh's ``check_integrity`` lists ``dir(model)`` for every model of the document to find its
``_check*`` validators: ~8 % of an app page's CPU, for an answer fixed per class. This keeps the
validator names on each class (in ``dir`` order) and calls the same bound validators in the same
order, so the issues and their logging are bokeh's.
"""
from __future__ import annotations

from collections.abc import Iterable

from bokeh.core.has_props import HasProps
from bokeh.core.validation.check import ValidationIssues, process_validation_issues
from bokeh.document import Document

from .versions import proven

__all__ = ("check_models", "validate_document")

_NAMES = "_bokehserver_validators"


def validator_names(cls: type[HasProps]) -> tuple[str, ...]:
    """The names of ``cls``'s validators, in the order ``check_integrity`` runs them."""
    names = cls.__dict__.get(_NAMES)
    if names is None:
        names = tuple(
            name for name in dir(cls)
            if name.startswith("_check") and getattr(getattr(cls, name), "validator_type", None)
        )
        setattr(cls, _NAMES, names)
    return names


def check_models(models: Iterable[HasProps]) -> ValidationIssues:
    """What ``check_integrity(models)`` returns."""
    issues = ValidationIssues()
    for model in models:
        for name in validator_names(type(model)):
            check = getattr(model, name)
            (issues.error if check.validator_type == "error" else issues.warning).extend(check())
    return issues


def validate_document(doc: Document) -> None:
    """What ``doc.validate()`` does (a document class's own ``validate`` is left to run as it is)."""
    if type(doc).validate is not Document.validate or not proven("document validation"):
        doc.validate()
        return
    for root in doc.roots:
        process_validation_issues(check_models(root.references()))
