"""Problems (ITIL): creation rules, linking incidents, known-error matching on trigger."""

import pytest
from django.core.exceptions import ValidationError

from incidents import problems, services
from incidents.events import AlertEvent
from incidents.models import Problem, Service


@pytest.fixture
def integration(service_a, make_integration):
    return make_integration(service_a, "generic")


def trigger(integration, capture, **kw):
    kw.setdefault("summary", "something broke")
    with capture(execute=True):
        return services.alert_ingest(integration=integration, event=AlertEvent(**kw)).incident


def known_error(team, service, **kw):
    kw.setdefault("workaround", "Restart the pool: `systemctl restart pgbouncer`.")
    return problems.problem_create(team=team, title=kw.pop("title", "Pool exhaustion"),
                                   status=Problem.Status.KNOWN_ERROR, match_service=service, **kw)


def flags(incident):
    entries = incident.timeline.filter(kind="info", data__has_key="known_error_id")
    return list(entries.values_list("message", flat=True))


def test_numbers_are_sequential_prb_refs(team_a):
    a = problems.problem_create(team=team_a, title="One")
    b = problems.problem_create(team=team_a, title="Two")
    assert (a.ref, b.ref) == ("PRB-1", "PRB-2")
    assert a.status == "new"


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"title": "  "}, "title"),
        ({"match_keywords": "timeout"}, "match_service"),
        ({"status": "known_error", "workaround": ""}, "workaround"),
    ],
)
def test_invalid_problems_are_refused_and_not_saved(team_a, fields, field):
    title = fields.pop("title", "x")
    with pytest.raises(ValidationError) as exc:
        problems.problem_create(team=team_a, title=title, **fields)
    assert field in exc.value.message_dict
    assert not Problem.objects.exists()


def test_match_service_of_another_team_is_refused(team_a, service_b):
    with pytest.raises(ValidationError) as exc:
        problems.problem_create(team=team_a, title="x", match_service=service_b, match_keywords="a")
    assert "match_service" in exc.value.message_dict


def test_keyword_match_flags_new_incident_with_workaround(integration, team_a, service_a,
                                                          django_capture_on_commit_callbacks):
    problem = known_error(team_a, service_a, match_keywords="pool exhausted, too many clients")
    incident = trigger(integration, django_capture_on_commit_callbacks,
                       summary="FATAL: sorry, TOO MANY CLIENTS already", dedup_key="x1")
    messages = flags(incident)
    assert len(messages) == 1
    assert messages[0].startswith(f"This looks like known error {problem.ref}: Pool exhaustion.")
    assert "systemctl restart pgbouncer" in messages[0]
    assert problems.known_error_match(incident=incident) == [problem]


def test_dedup_key_pattern_match(integration, team_a, service_a, django_capture_on_commit_callbacks):
    problem = known_error(team_a, service_a, match_dedup_key="disk-full-*")
    hit = trigger(integration, django_capture_on_commit_callbacks, dedup_key="DISK-FULL-db1")
    miss = trigger(integration, django_capture_on_commit_callbacks, dedup_key="cpu-high-db1")
    assert problems.known_error_match(incident=hit) == [problem]
    assert flags(miss) == []


def test_no_match_other_service_or_not_yet_known_error_or_empty_rule(
    integration, team_a, service_a, django_capture_on_commit_callbacks
):
    other = Service.objects.create(team=team_a, name="ledger")
    known_error(team_a, other, match_keywords="timeout")
    problems.problem_create(team=team_a, title="still investigating", status="investigating",
                            match_service=service_a, match_keywords="timeout")
    known_error(team_a, service_a, title="no rule")  # service only: too broad, never matches
    incident = trigger(integration, django_capture_on_commit_callbacks, summary="upstream timeout")
    assert flags(incident) == []


def test_reopen_does_not_flag_twice(integration, team_a, service_a, django_capture_on_commit_callbacks):
    known_error(team_a, service_a, match_keywords="timeout")
    incident = trigger(integration, django_capture_on_commit_callbacks, summary="timeout", dedup_key="t")
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_resolve(incident=incident, user=None, via="web")
        services.incident_reopen(incident=incident, user=None, via="web")
    assert len(flags(incident)) == 1


def test_link_incidents_writes_timeline_and_refuses_other_team(
    integration, team_a, service_b, make_integration, responder, django_capture_on_commit_callbacks
):
    problem = problems.problem_create(team=team_a, title="Flaky DNS")
    mine = trigger(integration, django_capture_on_commit_callbacks, dedup_key="a")
    theirs = trigger(make_integration(service_b), django_capture_on_commit_callbacks, dedup_key="b")
    with pytest.raises(ValidationError, match="another team"):
        problems.problem_link_incidents(problem=problem, incidents=[mine, theirs], user=responder)
    assert not problem.incidents.exists()
    assert problems.problem_link_incidents(problem=problem, incidents=[mine], user=responder) == [mine]
    assert problems.problem_link_incidents(problem=problem, incidents=[mine], user=responder) == []
    entry = mine.timeline.get(data__problem_id=problem.pk)
    assert entry.actor == responder and problem.ref in entry.message


def test_closed_problem_refuses_links(integration, team_a, django_capture_on_commit_callbacks):
    problem = problems.problem_create(team=team_a, title="old", status="closed")
    incident = trigger(integration, django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError, match="closed"):
        problems.problem_link_incidents(problem=problem, incidents=[incident], user=None)


def test_known_errors_search(team_a, service_a):
    pool = known_error(team_a, service_a, match_keywords="pgbouncer")
    known_error(team_a, service_a, title="Cert expiry", workaround="Renew with certbot", match_keywords="tls")
    problems.problem_create(team=team_a, title="Pool leak (new)")
    qs = Problem.objects.all()
    assert list(problems.known_errors_search(queryset=qs, text="pool")) == [pool]
    assert list(problems.known_errors_search(queryset=qs, text="CERTBOT"))[0].title == "Cert expiry"
    assert problems.known_errors_search(queryset=qs, text="").count() == 2



def test_open_incident_page_shows_the_known_error_banner(
    client, responder, integration, team_a, service_a, django_capture_on_commit_callbacks
):
    problem = known_error(team_a, service_a, match_keywords="pool exhausted",
                          workaround="Restart <b>pgbouncer</b>")
    hit = trigger(integration, django_capture_on_commit_callbacks, summary="Pool exhausted on db-1")
    miss = trigger(integration, django_capture_on_commit_callbacks, summary="Disk full")
    client.force_login(responder)
    page = client.get(f"/admin/incidents/incident/{hit.pk}/change/").content.decode()
    assert "This looks like known error" in page and problem.ref in page
    assert "Restart &lt;b&gt;pgbouncer&lt;/b&gt;" in page
    assert "This looks like known error" not in client.get(
        f"/admin/incidents/incident/{miss.pk}/change/").content.decode()
    services.incident_resolve(incident=hit, user=responder, via="web")
    resolved_page = client.get(f"/admin/incidents/incident/{hit.pk}/change/").content.decode()
    assert 'id="known-error"' not in resolved_page
