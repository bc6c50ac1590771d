from django.urls import path

from incidents.ingestion import views

app_name = "integrations"

urlpatterns = [
    path("generic/<str:token>/", views.generic_webhook, name="generic"),
]
