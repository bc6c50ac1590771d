from django.apps import AppConfig


class PostmortemsConfig(AppConfig):
    name = "postmortems"
    verbose_name = "Postmortems"
    default_auto_field = "django.db.models.BigAutoField"
