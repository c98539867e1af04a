"""The bokeh_app template tag: a Django page embeds a live app of its own site."""
from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory


def render(source: str) -> str:
    request = RequestFactory().get("/report/", HTTP_HOST="dash.example.com")
    return Template("{% load bokehserver %}" + source).render(Context({"request": request}))


def test_the_tag_writes_the_autoload_script_of_the_app_on_this_site(web_app, bk):
    web_app({"/sliders": bk.slider_doc}, prefix="/bokeh")
    html = render('{% bokeh_app "sliders" color="red" %}')
    assert html.startswith("<script id=")
    assert "http://dash.example.com/bokeh/sliders/autoload.js?bokeh-autoload-element=" in html
    assert "&bokeh-app-path=/bokeh/sliders" in html and "color=red" in html


def test_an_unknown_app_is_a_template_error(web_app, bk):
    web_app({"/sliders": bk.slider_doc})
    with pytest.raises(TemplateSyntaxError, match="no Bokeh application at '/nope'"):
        render('{% bokeh_app "nope" %}')
