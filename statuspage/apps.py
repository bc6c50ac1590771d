from django.apps import AppConfig


class StatuspageConfig(AppConfig):
    name = "statuspage"
    verbose_name = "Status pages"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Cache invalidation on every change, and the receivers that turn incidents
        # into component statuses and public incidents.
        from statuspage import automation, signals  # noqa: F401
