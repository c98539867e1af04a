from django.apps import AppConfig


class MeasurementsConfig(AppConfig):
    name = "examples.measurements"
    label = "measurements"
    verbose_name = "Measurements (example)"
    default_auto_field = "django.db.models.BigAutoField"
