from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from incidents import alert_queue, email_alerts, problems, signals
        from incidents.endpoint_route import team_triage_cache_clear
        from incidents.ingestion.common import integration_cache_clear
        from incidents.models import Integration, Service, TriageRule
        from ircore.clock import clock_loop_register
        from ircore.views import health_details

        # Accepted events become alerts in the clock process (incidents.alert_queue).
        clock_loop_register("alert-queue", alert_queue.queue_applier_run)
        health_details["alert_queue"] = alert_queue.queue_health
        for model_signal in (post_save, post_delete):
            model_signal.connect(integration_cache_clear, sender=Integration,
                                 dispatch_uid=f"incidents.integration_cache_clear.{model_signal}")
            for model in (TriageRule, Service):  # the endpoint's triage (endpoint_route)
                model_signal.connect(team_triage_cache_clear, sender=model,
                                     dispatch_uid=f"incidents.team_triage_cache_clear.{model.__name__}.{model_signal}")

        email_alerts.register()  # <integration token>@INBOUND_EMAIL_DOMAIN becomes an alert

        # Known-error matching: flag a new incident that looks like a known problem.
        signals.incident_triggered.connect(
            problems.on_incident_triggered, dispatch_uid="incidents.problems.known_error_flag"
        )
