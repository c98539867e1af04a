"""Settings of the bokeh-django comparison site: only what bokeh-django and Channels need."""
SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "channels",
    "bokeh_django",
]
ROOT_URLCONF = "bokeh_django_site.urls"
ASGI_APPLICATION = "bokeh_django_site.asgi.application"
DATABASES = {}
STATIC_URL = "/static/"
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
