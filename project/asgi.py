"""ASGI entry point of the demo site: Django for HTTP, bokehserver's consumers for websockets."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from bokehserver.django_asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from bokehserver.asgi import bokeh_asgi_application  # noqa: E402  (needs Django set up)

application = bokeh_asgi_application(django_asgi_app)
