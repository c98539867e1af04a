"""Settings of the demo and test site: SQLite and the in-memory channel layer, nothing to start."""
from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "bokehserver-demo-insecure-key-change-me")
# off unless asked for (DJANGO_DEBUG=1, as ./dev serve does): debug pages show settings and tracebacks
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "bokehserver",
    "examples.measurements",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BOKEHSERVER_DB", str(BASE_DIR / "db.sqlite3")),
        # app code, record writes and the admin write from several threads and processes: wait for
        # the lock instead of failing with "database is locked"
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # a file, not memory: app code runs on threads, and tests count the connections to it
        "TEST": {"NAME": os.environ.get("BOKEHSERVER_TEST_DB", str(BASE_DIR / "test-db.sqlite3"))},
    }
}

# BOKEHSERVER_DATABASE_URL=postgresql://user[:password]@host[:port]/name serves (and tests) on PostgreSQL.
if os.environ.get("BOKEHSERVER_DATABASE_URL"):
    from urllib.parse import unquote, urlsplit

    _db = urlsplit(os.environ["BOKEHSERVER_DATABASE_URL"])
    if _db.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"BOKEHSERVER_DATABASE_URL: only postgresql:// URLs are understood, not {_db.scheme!r}")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _db.path.lstrip("/") or "bokehserver",
            "USER": unquote(_db.username or ""),
            "PASSWORD": unquote(_db.password or ""),
            "HOST": _db.hostname or "",
            "PORT": str(_db.port or ""),
        }
    }

if os.environ.get("BOKEHSERVER_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # longer than channels-redis's 5 s blocking receive (redis-py 8 defaults to 5 s)
            "CONFIG": {"hosts": [{"address": os.environ["BOKEHSERVER_REDIS_URL"], "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "bokehserver.staticfiles.BokehJSFinder",
]

BOKEHSERVER = {
    "APPS": {
        "/sliders": BASE_DIR / "examples" / "sliders.py",
        "/dirapp": BASE_DIR / "examples" / "dirapp",
        "/widgets": BASE_DIR / "examples" / "widgets.py",
        "/streaming": BASE_DIR / "examples" / "streaming.py",
        "/clock": BASE_DIR / "examples" / "clock.py",
        "/shared_feed": BASE_DIR / "examples" / "shared_feed",
        "/notebook": BASE_DIR / "examples" / "notebook.ipynb",
        "/measurements": BASE_DIR / "examples" / "measurements" / "app.py",
        "/whoami": BASE_DIR / "examples" / "whoami.py",
    },
    # e.g. BOKEHSERVER_LOGIN_REQUIRED=/whoami,/sliders: those apps need a logged-in user
    "LOGIN_REQUIRED": [p for p in os.environ.get("BOKEHSERVER_LOGIN_REQUIRED", "").split(",") if p],
    # how often each server process refreshes its session records (tests shorten it)
    "RECORD_HEARTBEAT_MILLISECONDS": int(os.environ.get("BOKEHSERVER_RECORD_HEARTBEAT_MS", "10000")),
    # the admin's live dashboard (staff with view permission on Bokeh sessions)
    "DASHBOARD_PATH": "/bokehserver-dashboard",
}
LOGIN_REDIRECT_URL = "/embed/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "bokehserver": {"handlers": ["console"], "level": os.environ.get("BOKEHSERVER_LOG_LEVEL", "INFO")},
    },
}
