"""App pages and the index are Django templates a site overrides; directory apps keep their own Jinja template."""
from __future__ import annotations

import copy

from django.test import AsyncClient


def _with_template_dir(settings, folder):
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [str(folder)]
    settings.TEMPLATES = templates


async def test_app_page_is_the_bokehserver_app_page_template(web_app, bk):
    web_app({"/app": bk.slider_doc})
    page = (await AsyncClient().get("/app")).content.decode()
    assert "<title>slider app</title>" in page
    assert "data-root-id=" in page and '"token":' in page


async def test_a_site_overrides_the_app_page_the_django_way(web_app, bk, settings, tmp_path):
    (tmp_path / "bokehserver").mkdir()
    (tmp_path / "bokehserver" / "app_page.html").write_text(
        '{% extends "bokehserver/app_page.html" %}'
        '{% block content %}<nav id="site-nav">{{ app_path }} on my site</nav>{{ block.super }}{% endblock %}'
    )
    _with_template_dir(settings, tmp_path)
    web_app({"/app": bk.slider_doc})
    page = (await AsyncClient().get("/app")).content.decode()
    assert '<nav id="site-nav">/app on my site</nav>' in page
    assert page.index('id="site-nav"') < page.index("data-root-id=")
    assert "bokeh.min.js" in page


async def test_the_demo_site_overrides_the_index_in_its_templates_folder(web_app, bk):
    web_app({"/app": bk.slider_doc, "/other": bk.div_doc})
    index = (await AsyncClient().get("/")).content.decode()
    assert "bokehserver demo" in index
    assert 'href="/admin/"' in index
    assert 'href="/app"' in index and 'href="/other"' in index


async def test_directory_app_keeps_its_jinja_template(web_app, bk):
    web_app({"/dirapp": bk.DIRAPP})
    page = (await AsyncClient().get("/dirapp")).content.decode()
    assert 'id="dirapp-heading"' in page
    assert "bokeh.min.js" in page
