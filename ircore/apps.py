from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class IrcoreConfig(AppConfig):
    name = "ircore"
    verbose_name = "Teams and access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Inbound email from the ESP webhooks joins the same store-and-enqueue path as SMTP.
        from ircore import inbound, inbound_anymail, tasks
        from ircore.clock import clock_job_register
        from ircore.lookups import lookups_register

        lookups_register()

        inbound_anymail.connect()
        clock_job_register("inbound_requeue", inbound.inbound_requeue, every=30)
        clock_job_register("inbound_purge", inbound.inbound_purge, every=3600)
        # Tasks kept while the broker was unreachable go out within ~2 s of it answering again.
        clock_job_register("task_outbox", tasks.outbox_flush, every=2)


class IrcoreAdminConfig(AdminConfig):
    """Replaces django.contrib.admin so ``admin.site`` is ircore's console."""

    default_site = "ircore.admin_site.IrcoreAdminSite"
