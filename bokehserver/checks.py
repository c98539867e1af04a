"""System checks: misconfiguration is reported at startup with a stable id and a hint."""
from __future__ import annotations

from typing import Any

from django.core.checks import Error, Warning, register

from . import conf


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    cfg = conf.get_config()
    if cfg["_unknown"]:
        problems.append(Warning(
            f"Unknown BOKEHSERVER keys: {', '.join(cfg['_unknown'])}",
            hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}",
            id="bokehserver.W001",
        ))
    apps = cfg["APPS"]
    if not isinstance(apps, dict):
        problems.append(Error("BOKEHSERVER['APPS'] must be a dict of URL path to app", id="bokehserver.E001",
                              hint='e.g. {"/sliders": "examples/sliders.py"}'))
    else:
        for route in apps:
            if not isinstance(route, str) or not route.startswith("/"):
                problems.append(Error(f"App path {route!r} must be a string starting with '/'",
                                      hint="Use keys like '/sliders'", id="bokehserver.E002"))
    if cfg["SIGN_SESSIONS"] and not cfg["SECRET_KEY"]:
        import os

        if not os.environ.get("BOKEH_SECRET_KEY"):
            problems.append(Error("Signed sessions need a secret key", id="bokehserver.E003",
                                  hint="Set BOKEHSERVER['SECRET_KEY'] or the BOKEH_SECRET_KEY environment variable"))
    return problems


@register()
def check_staticfiles(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """With staticfiles, BokehJS should be one of the site's static files (else it claims ``<prefix>/static/``)."""
    from django.apps import apps

    from .staticfiles import FINDER, uses_staticfiles

    if not apps.is_installed("django.contrib.staticfiles") or uses_staticfiles():
        return []
    return [Warning(
        "BokehJS is not among the site's static files: pages load it from bokeh serve's <prefix>/static/ URLs, "
        "which runserver's static files handler answers with 404 when they fall under STATIC_URL",
        hint=f'Add "{FINDER}" to STATICFILES_FINDERS (after Django\'s two default finders)',
        id="bokehserver.W002",
    )]
