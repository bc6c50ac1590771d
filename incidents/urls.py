"""The ingestion endpoints, with their full paths: the root URLconf takes these patterns
as they are rather than through an ``include("integrations/", ...)``, since every level
of include costs each request a resolver match of its own (~40k instructions, about 5 % of
a bare request's, by callgrind), on the busiest paths there are."""

from django.urls import path

from incidents.ingestion import heartbeat, views

urlpatterns = [
    path("integrations/generic/<str:token>/", views.generic_webhook, name="integrations-generic"),
    # PagerDuty clients are configured with a base URL and append /v2/enqueue
    # themselves, so these paths have no trailing slash.
    path("integrations/pagerduty/v2/enqueue", views.pagerduty_enqueue, name="integrations-pagerduty-enqueue"),
    path("integrations/pagerduty/v2/change/enqueue", views.pagerduty_change_enqueue,
         name="integrations-pagerduty-change"),
    path("integrations/alertmanager/<str:token>/", views.alertmanager_webhook,
         name="integrations-alertmanager"),
    path("integrations/grafana/<str:token>/", views.grafana_webhook, name="integrations-grafana"),
    path("integrations/heartbeat/<str:token>/", heartbeat.heartbeat_ping, name="integrations-heartbeat"),
]
