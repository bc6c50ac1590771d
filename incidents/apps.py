from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents import email_alerts, problems, signals

        email_alerts.register()  # <integration token>@INBOUND_EMAIL_DOMAIN becomes an alert

        # Known-error matching: flag a new incident that looks like a known problem.
        signals.incident_triggered.connect(
            problems.on_incident_triggered, dispatch_uid="incidents.problems.known_error_flag"
        )
