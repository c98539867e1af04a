"""URLs of the demo site: the admin, and every Bokeh endpoint at the site root."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("bokehserver.urls")),
]
