from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class IrcoreConfig(AppConfig):
    name = "ircore"
    verbose_name = "Teams and access"
    default_auto_field = "django.db.models.BigAutoField"


class IrcoreAdminConfig(AdminConfig):
    """Replaces django.contrib.admin so ``admin.site`` is ircore's console."""

    default_site = "ircore.admin_site.IrcoreAdminSite"
