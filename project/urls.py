"""URLs of the demo site: the admin, logging in and out, a page embedding an app, and every Bokeh endpoint."""
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("embed/", views.embed, name="embed"),
    path("", include("bokehserver.urls")),
]
