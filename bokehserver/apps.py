from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed


class BokehServerConfig(AppConfig):
    name = "bokehserver"
    verbose_name = "Bokeh server"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from . import checks  # noqa: F401  (registers the system checks)
        from . import conf
        from ._compat import install_curdoc_binding, install_fast_models
        from .signals import end_sessions_of_logout

        install_curdoc_binding()
        if conf.get("SPEED_SHORTCUTS"):
            install_fast_models()
        setting_changed.connect(conf.reset, dispatch_uid="bokehserver.conf.reset")
        user_logged_out.connect(end_sessions_of_logout, dispatch_uid="bokehserver.signals.logout")
