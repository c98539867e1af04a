"""A new session's document is validated with bokeh's checks and bokeh's results."""
from __future__ import annotations

import logging

import bokeh.plotting  # noqa: F401  (the plotting models take part)
from bokeh.core.validation.check import check_integrity
from bokeh.document import Document
from bokeh.model import Model
from bokeh.models import ColumnDataSource, Column, Plot, Range1d, Row, Scatter

from bokehserver._compat.validation import check_models, validate_document, validator_names


def test_each_class_runs_the_validators_bokeh_finds_on_its_models():
    # parents first, so that a subclass asked after its parent must not take the parent's answer
    classes = sorted(Model.model_class_reverse_map.values(), key=lambda cls: len(cls.__mro__))
    for cls in classes:
        found = [name for name in dir(cls) if name.startswith("_check") and getattr(getattr(cls, name), "validator_type", None)]
        assert list(validator_names(cls)) == found, cls
    assert validator_names(Plot) != validator_names(Model)


def faulty_models() -> set[Model]:
    plot = Plot(x_range=Range1d(), y_range=Range1d(), extra_x_ranges={"other": Range1d()})
    plot.add_glyph(ColumnDataSource(data=dict(x=[1, 2], y=[1, 2])), Scatter(x="x", y="y"), x_range_name="missing")
    return Column(children=[Row(), plot]).references()


def test_the_issues_are_bokehs_in_bokehs_order():
    models = faulty_models()
    issues = check_models(models)
    assert issues.error and issues.warning
    assert issues == check_integrity(models)


def test_a_document_logs_what_bokeh_logs(caplog):
    doc = Document()
    doc.add_root(next(model for model in faulty_models() if isinstance(model, Column)))
    with caplog.at_level(logging.WARNING, logger="bokeh"):
        doc.validate()
    bokehs = [(record.levelno, record.getMessage()) for record in caplog.records]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bokeh"):
        validate_document(doc)
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == bokehs
    assert len(bokehs) >= 2
