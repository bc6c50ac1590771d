from django.apps import AppConfig


class StatuspageConfig(AppConfig):
    name = "statuspage"
    verbose_name = "Status pages"
    default_auto_field = "django.db.models.BigAutoField"
