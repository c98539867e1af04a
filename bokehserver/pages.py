"""The HTML of an app page: the Django template ``bokehserver/app_page.html``, or the app's own Jinja template.

A site overrides ``bokehserver/app_page.html`` the Django way (its ``templates/`` folder).
Directory apps with a ``templates/index.html`` keep it, rendered by bokeh as bokeh serve does.
"""
from __future__ import annotations

from typing import Any

from bokeh.core.templates import FILE
from bokeh.embed.bundle import Bundle
from bokeh.embed.elements import div_for_render_item, html_page_for_render_items, script_for_render_items
from bokeh.embed.util import RenderItem
from bokeh.embed.wrappers import wrap_in_script_tag
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from .session import ServerSession

__all__ = ("render_app_page",)

DEFAULT_TITLE = "Bokeh Application"


def render_app_page(
    request: HttpRequest, session: ServerSession, bundle: Bundle, app_path: str, favicon_url: str | None = None
) -> str:
    """The page that shows ``session``'s document and connects BokehJS to it."""
    doc = session.document
    item = RenderItem(token=session.token, roots=doc.roots, use_for_title=False)
    if doc.template is not FILE:
        return html_page_for_render_items(bundle, {}, [item], doc.title, template=doc.template,
                                          template_variables=doc.template_variables)
    bokeh_js, bokeh_css = bundle
    context: dict[str, Any] = {
        **doc.template_variables,
        "title": doc.title or DEFAULT_TITLE,
        "app_path": app_path,
        "favicon_url": favicon_url,
        "bokeh_css": mark_safe(bokeh_css),
        "bokeh_js": mark_safe(bokeh_js),
        "roots": list(item.roots),
        "plot_div": mark_safe(div_for_render_item(item)),
        "plot_script": mark_safe(wrap_in_script_tag(script_for_render_items({}, [item]))),
    }
    return render_to_string("bokehserver/app_page.html", context, request=request)
