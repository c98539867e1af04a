"""bokeh's settings read the same with the shortcut, wherever a value comes from."""
from __future__ import annotations

import json

import pytest
from bokeh.core.json_encoder import serialize_json
from bokeh.settings import PrioritizedSetting, Settings, settings
from bokeh.util import serialization

from bokehserver._compat import settings_reads
from bokehserver._compat.fast_models import bokehs_own_models


def all_settings() -> list[PrioritizedSetting]:
    return [value for value in vars(Settings).values() if isinstance(value, PrioritizedSetting)]


def read(setting: PrioritizedSetting) -> object:
    try:
        return setting()
    except Exception as exc:  # a setting without a default raises, under both
        return type(exc)


def bokehs(setting: PrioritizedSetting) -> object:
    with bokehs_own_models():
        return read(setting)


def test_the_shortcut_is_installed():
    assert PrioritizedSetting.__call__ is settings_reads._call
    assert serialization.make_id is settings_reads._make_id


def test_every_setting_reads_as_bokehs_with_nothing_set():
    for setting in all_settings():
        assert read(setting) == bokehs(setting), setting._name


def test_every_setting_reads_as_bokehs_with_bokeh_dev_set(monkeypatch):
    monkeypatch.setenv("BOKEH_DEV", "yes")
    for setting in all_settings():
        assert read(setting) == bokehs(setting), setting._name
    assert settings.pretty() is True  # pretty's dev default


@pytest.mark.parametrize("source", ["environment", "user", "config override", "config user"])
def test_each_source_of_a_value_wins_as_in_bokeh(monkeypatch, source):
    if source == "environment":
        monkeypatch.setenv("BOKEH_SIMPLE_IDS", "no")
        monkeypatch.setenv("BOKEH_PRETTY", "yes")
    elif source == "user":
        monkeypatch.setattr(settings.simple_ids, "_user_value", False)
        monkeypatch.setattr(settings.pretty, "_user_value", True)
    else:
        attribute = "_config_override" if source == "config override" else "_config_user"
        monkeypatch.setattr(settings, attribute, {"simple_ids": False, "pretty": True})
    assert read(settings.simple_ids) is False
    assert read(settings.pretty)
    assert not serialization.make_id().startswith("p")  # a globally unique id, as bokeh makes then
    assert serialize_json({"a": 1}) == json.dumps({"a": 1}, indent=2)
    for setting in all_settings():
        assert read(setting) == bokehs(setting), setting._name


def test_an_immediate_value_or_default_is_bokehs():
    assert settings.pretty(True) is True
    assert settings.simple_ids(default=False) is False  # a caller's default outranks the setting's own
    with bokehs_own_models():
        assert settings.simple_ids(default=False) is False


def test_ids_count_on_with_bokehs_own_make_id():
    ours = serialization.make_id()
    with bokehs_own_models():
        theirs = serialization.make_id()
    after = serialization.make_id()
    assert [int(i[1:]) for i in (ours, theirs, after)] == [int(ours[1:]) + n for n in range(3)]
