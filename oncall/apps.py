from django.apps import AppConfig


class OncallConfig(AppConfig):
    name = "oncall"
    verbose_name = "On-call"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Escalations follow incidents through signals; the clock runs the due work.
        from oncall import clock_jobs, email_replies, receivers

        receivers.connect()
        clock_jobs.register()
        email_replies.register()  # reply.<token>@INBOUND_EMAIL_DOMAIN: ack/resolve/... by email
