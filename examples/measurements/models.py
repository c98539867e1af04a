"""A small table the measurements Bokeh app reads and writes through Django's ORM."""
from django.db import models


class Measurement(models.Model):
    label = models.CharField(max_length=100, default="sample")
    value = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.label}: {self.value}"
