"""The ASGI application daphne serves: bokeh-django's HTTP and websocket routes behind Channels.

bokeh-django reads ``scope["cookies"]``, so both routers sit behind Channels' CookieMiddleware.
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bokeh_django_site.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402
from django.apps import apps  # noqa: E402

routes = apps.get_app_config("bokeh_django").routes

application = ProtocolTypeRouter({
    "websocket": CookieMiddleware(URLRouter(routes.get_websocket_urlpatterns())),
    "http": CookieMiddleware(URLRouter(routes.get_http_urlpatterns())),
})
