"""A site that mounts its apps under a path with a converter: /reports/<pk>/<app>."""
from django.urls import include, path

urlpatterns = [
    path("reports/<int:pk>/", include("bokehserver.urls")),
]
