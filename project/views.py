"""The demo site's own pages."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def embed(request):
    """A Django page with a live app inside it, through the ``bokeh_app`` template tag."""
    return render(request, "demo/embed.html")
