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
    # with several processes: how soon a relayed websocket notices its session's process is gone
    "RELAY_OPEN_TIMEOUT_MILLISECONDS": int(os.environ.get("BOKEHSERVER_RELAY_OPEN_TIMEOUT_MS", "5000")),
    "RELAY_PING_MILLISECONDS": int(os.environ.get("BOKEHSERVER_RELAY_PING_MS", "5000")),
    # e.g. BOKEHSERVER_MAX_SESSIONS_PER_ADDRESS=20 where clients reach the server without a proxy
    "MAX_SESSIONS_PER_ADDRESS": int(os.environ["BOKEHSERVER_MAX_SESSIONS_PER_ADDRESS"])
    if os.environ.get("BOKEHSERVER_MAX_SESSIONS_PER_ADDRESS") else None,
    # the admin's live dashboard (staff with view permission on Bokeh sessions)
    "DASHBOARD_PATH": "/bokehserver-dashboard",
}
LOGIN_REDIRECT_URL = "/embed/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Log times in UTC (Django's default zone is America/Chicago, and it sets the process's zone).
TIME_ZONE = "UTC"

# One format for every line an operator reads: bokehserver, bokeh, Django, daphne, and the
# warnings app code raises (runbokeh routes them to "py.warnings"). Django's own console handler
# prints only with DEBUG on; "django" is replaced here so that nothing is printed twice.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "null": {"class": "logging.NullHandler"},
    },
    "loggers": {
        "bokehserver": {"handlers": ["console"], "level": os.environ.get("BOKEHSERVER_LOG_LEVEL", "INFO")},
        "bokeh": {"handlers": ["console"], "level": "INFO"},
        "django": {"handlers": ["console"], "level": "INFO"},
        # a bad Host header is a client's mistake, not a server error with a traceback (Django's advice)
        "django.security.DisallowedHost": {"handlers": ["null"], "propagate": False},
        "daphne": {"handlers": ["console"], "level": "WARNING"},
        "py.warnings": {"handlers": ["console"]},
    },
}
