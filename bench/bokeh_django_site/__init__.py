"""A minimal Django site serving the benchmark apps with bokeh-django (the existing Channels wrapper).

It runs only in a separate environment that has ``bokeh-django`` installed (see ``bench/servers.py``,
server kind ``"bokeh-django"``); the apps to serve come from ``BENCH_BOKEH_DJANGO_APPS`` (os.pathsep-separated).
"""
