from django.apps import AppConfig


class StatuspageConfig(AppConfig):
    name = "statuspage"
    verbose_name = "Status pages"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Cache invalidation on every change, and the receivers that turn incidents
        # into component statuses and public incidents.
        from ircore.clock import clock_job_register
        from statuspage import automation, signals  # noqa: F401
        from statuspage.deliveries import deliveries_stuck_requeue
        from statuspage.services import maintenances_auto_advance

        clock_job_register("statuspage_maintenance", maintenances_auto_advance, every=15)
        # Subscriber notifications a crashed worker left half-sent.
        clock_job_register("statuspage_deliveries", deliveries_stuck_requeue, every=30)
