from django.urls import path

from incidents.ingestion import heartbeat, views

app_name = "integrations"

urlpatterns = [
    path("generic/<str:token>/", views.generic_webhook, name="generic"),
    # PagerDuty clients are configured with a base URL and append /v2/enqueue
    # themselves, so these paths have no trailing slash.
    path("pagerduty/v2/enqueue", views.pagerduty_enqueue, name="pagerduty-enqueue"),
    path("pagerduty/v2/change/enqueue", views.pagerduty_change_enqueue, name="pagerduty-change"),
    path("alertmanager/<str:token>/", views.alertmanager_webhook, name="alertmanager"),
    path("grafana/<str:token>/", views.grafana_webhook, name="grafana"),
    path("heartbeat/<str:token>/", heartbeat.heartbeat_ping, name="heartbeat"),
]
