from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents import problems, signals

        # Known-error matching: flag a new incident that looks like a known problem.
        signals.incident_triggered.connect(
            problems.on_incident_triggered, dispatch_uid="incidents.problems.known_error_flag"
        )
