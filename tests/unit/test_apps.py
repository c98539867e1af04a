"""What installing bokehserver changes for the rest of a Django site: nothing a plain bokeh page can see."""
from __future__ import annotations

import re

import pytest
from bokeh.core.has_props import HasProps
from bokeh.embed import components
from bokeh.plotting import figure
from django.apps import apps
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path

from bokehserver._compat import fast_models
from bokehserver._compat.fast_models import bokehs_own_models

BOKEH_IDS = re.compile(r"\b(p\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")


def static_plot(request: HttpRequest) -> HttpResponse:
    """A site's own view: a plot embedded with bokeh.embed.components, no Bokeh server involved."""
    plot = figure(title="sales", x_range=(0, 10), tools="pan,box_zoom,reset")
    plot.line([1, 2, 3, 4], [3, 1, 4, 1], legend_label="2026", line_width=2)
    plot.scatter([1, 2, 3, 4], [2, 7, 1, 8], size=8, color="firebrick")
    script, div = components(plot)
    return HttpResponse(f"<html><body>{div}{script}</body></html>")


urlpatterns = [path("plot/", static_plot)]


def same_ids(html: str) -> str:
    """``html`` with bokeh's generated ids numbered in order of appearance (they differ per run)."""
    seen: dict[str, str] = {}
    return BOKEH_IDS.sub(lambda m: seen.setdefault(m.group(0), f"<id{len(seen)}>"), html)


@pytest.mark.urls(__name__)
def test_a_view_embedding_a_static_plot_gives_bokehs_own_output(client):
    response = client.get("/plot/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="bk-root"' in html or "data-root-id" in html
    assert '"type":"object","name":"Figure"' in html.replace(" ", "")
    with bokehs_own_models():
        own = client.get("/plot/").content.decode()
    assert same_ids(html) == same_ids(own)


def test_the_speed_shortcuts_setting_leaves_bokeh_as_it_is():
    config = apps.get_app_config("bokehserver")
    with bokehs_own_models():
        with override_settings(BOKEHSERVER={"SPEED_SHORTCUTS": False}):
            config.ready()
        for owner, name, original, _ in fast_models._SHORTCUTS:
            assert vars(owner)[name] is original, name
        with override_settings(BOKEHSERVER={"SPEED_SHORTCUTS": True}):
            config.ready()
        assert vars(HasProps)["__init__"] is fast_models._init
