"""The ingestion endpoints resolve at the root URLconf's own level (no include), and the
benchmark's URLconf serves them exactly as production does."""

from django.urls import URLPattern, get_resolver, resolve

from incidents.ingestion import heartbeat, views

INGESTION_PATHS = {
    "/integrations/generic/tok/": views.generic_webhook,
    "/integrations/pagerduty/v2/enqueue": views.pagerduty_enqueue,
    "/integrations/pagerduty/v2/change/enqueue": views.pagerduty_change_enqueue,
    "/integrations/alertmanager/tok/": views.alertmanager_webhook,
    "/integrations/grafana/tok/": views.grafana_webhook,
    "/integrations/heartbeat/tok/": heartbeat.heartbeat_ping,
}


def test_ingestion_paths_resolve_without_an_include():
    for path, view in INGESTION_PATHS.items():
        match = resolve(path)
        assert match.func is view, path
        # One pattern tried per level: a path behind an include would list two.
        assert len(match.tried[-1]) == 1, (path, match.tried[-1])
        assert isinstance(match.tried[-1][0], URLPattern)


def test_ingestion_patterns_come_first():
    """Django tries patterns in order: the busiest paths are not behind the console's."""
    first = get_resolver().url_patterns[: len(INGESTION_PATHS)]
    assert {str(p.pattern).split("/")[1] for p in first} <= {"generic", "pagerduty", "alertmanager",
                                                               "grafana", "heartbeat"}


def test_bench_urlconf_serves_ircore_patterns_at_the_same_level():
    from bench import urls as bench_urls
    from ircore import urls as ircore_urls

    assert bench_urls.urlpatterns[-len(ircore_urls.urlpatterns):] == ircore_urls.urlpatterns
    for path, view in INGESTION_PATHS.items():
        match = resolve(path, urlconf="bench.urls")
        assert match.func is view
        assert len(match.tried[-1]) == 1
