"""bokeh-django routes: one ``document`` route per app given in BENCH_BOKEH_DJANGO_APPS."""
import os
from pathlib import Path

from bokeh_django import document

APP_PATHS = [Path(p) for p in os.environ.get("BENCH_BOKEH_DJANGO_APPS", "").split(os.pathsep) if p]

bokeh_apps = [document("/" + (path.stem if path.suffix else path.name), path) for path in APP_PATHS]

urlpatterns = []
