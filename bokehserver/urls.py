"""Bokeh's HTTP endpoints for ``include("bokehserver.urls")`` at the site root.

The paths are matched generically and resolved against the installed apps and prefix, so
apps can be chosen at startup (``runbokeh``) after the URLconf was imported. Include these
last: the app-page pattern matches any path that no app claims with a 404.
"""
from __future__ import annotations

from django.urls import re_path

from . import views

app_name = "bokehserver"

urlpatterns = [
    re_path(r"^favicon\.ico$", views.favicon, name="favicon"),
    re_path(r"^(?P<app_path>.*)/autoload\.js$", views.autoload_js, name="autoload"),
    re_path(r"^(?P<app_path>.*)/metadata$", views.metadata, name="metadata"),
    re_path(r"^(?:(?P<app_path>.*?)/)?static/(?P<file_path>.*)$", views.static, name="static"),
    re_path(r"^(?P<app_path>.*)$", views.page, name="page"),
]
