"""``{% load bokehserver %}{% bokeh_app "sliders" %}``: a live app inside any Django page.

The tag writes the script ``bokeh.embed.server_document`` makes: the browser asks the app's
``autoload.js`` with the page's cookies, so the session belongs to the page's user and the
app's access rule applies (a refusal shows in the page where the app would be).
"""
from __future__ import annotations

from typing import Any

from bokeh.embed import server_document
from django import template
from django.utils.safestring import SafeString, mark_safe

from .. import registry
from ..urls import app_url_path

register = template.Library()


@register.simple_tag(takes_context=True)
def bokeh_app(context: dict[str, Any], app_path: str, **arguments: Any) -> SafeString:
    """Embed the app at ``app_path`` (e.g. "sliders" or "/sliders"); keyword arguments become its request arguments."""
    request = context.get("request")
    if request is None:
        raise template.TemplateSyntaxError("bokeh_app needs the request in the context (the 'request' context processor)")
    web_app = registry.get_web_application()
    route = "/" + app_path.strip("/")
    if web_app.context_for(route) is None:
        raise template.TemplateSyntaxError(f"bokeh_app: no Bokeh application at {route!r}")
    url = request.build_absolute_uri(app_url_path(web_app.prefix, route))
    return mark_safe(server_document(url, arguments={k: str(v) for k, v in arguments.items()} or None))
