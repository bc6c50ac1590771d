"""Email integrations: <integration token>@<inbound domain> becomes an alert."""

from __future__ import annotations

import pytest

from tests.inbound.conftest import CORPUS, make_email


@pytest.fixture
def email_integration(service_a, make_integration):
    return make_integration(service_a, kind="email")


def address(integration) -> str:
    return f"{integration.token}@in.example.net"


def test_an_email_opens_an_incident_with_subject_body_sender_and_attachments(deliver, email_integration):
    from incidents.models import Alert

    msg = make_email(subject="Disk full on db1", body="/var is 98% full\nfree: 200 MB",
                     to=address(email_integration),
                     attachments=(("df.txt", b"Filesystem 98%", "text/plain"),
                                  ("graph.png", b"\x89PNG....", "image/png")))
    row = deliver(msg, address(email_integration))
    assert row.status == "processed", row.result
    alert = Alert.objects.get()
    assert alert.summary == "Disk full on db1"
    assert "/var is 98% full" in alert.details
    assert alert.source == "nagios@monitoring.example.com"
    assert alert.labels["attachments"] == "df.txt, graph.png"
    assert alert.payload["email"]["date"] == "2026-03-02T10:00:00+00:00"
    assert [a["filename"] for a in alert.payload["email"]["attachments"]] == ["df.txt", "graph.png"]
    assert alert.incident.title == "Disk full on db1"
    assert alert.integration == email_integration


def test_html_only_alert_becomes_readable_text(deliver, email_integration):
    from incidents.models import Alert

    to = address(email_integration)
    raw = (CORPUS / "alert-zabbix-html.eml").read_bytes().replace(b"{{TO}}", to.encode())
    row = deliver(raw, address(email_integration))
    assert row.status == "processed", row.result
    alert = Alert.objects.get()
    assert alert.summary == "Problem: High CPU utilization on web-07"
    assert "Host: web-07" in alert.details
    assert "<td>" not in alert.details and "color:" not in alert.details


def test_replies_and_forwards_and_ticket_tags_dedup_into_one_incident(deliver, email_integration):
    from incidents.models import Incident

    to = address(email_integration)
    for subject in ("Disk full on db1", "Re: Disk full on db1", "Fwd: RE: [#4711] Disk full on db1",
                    "AW: [Ticket#2026030212] Disk  full on DB1"):
        assert deliver(make_email(subject=subject, to=to), to).status == "processed"
    incident = Incident.objects.get()
    assert incident.alert_count == 4


def test_recovery_mail_resolves_the_problem_mail_incident(deliver, email_integration):
    from incidents.models import Incident

    to = address(email_integration)
    deliver(make_email(subject="** PROBLEM Service Alert: web01/HTTP is CRITICAL **", to=to), to)
    incident = Incident.objects.get()
    assert incident.status == "triggered"
    deliver(make_email(subject="** RECOVERY Service Alert: web01/HTTP is OK **", to=to), to)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.timeline.filter(kind="resolved").exists()


@pytest.mark.parametrize("subject", ["[RESOLVED] Disk full on db1", "Disk full on db1: Recovered",
                                     "UP: Disk full on db1", "Re: Disk full on db1 - resolved"])
def test_default_resolve_words(deliver, email_integration, subject):
    from incidents.models import Incident

    to = address(email_integration)
    deliver(make_email(subject="Disk full on db1", to=to), to)
    deliver(make_email(subject=subject, to=to), to)
    assert Incident.objects.get().status == "resolved"


def test_lower_case_up_in_a_subject_is_not_a_recovery(deliver, email_integration):
    from incidents.models import Incident

    to = address(email_integration)
    deliver(make_email(subject="Disk filling up on db1", to=to), to)
    assert Incident.objects.get().status == "triggered"


def test_dedup_by_regex_capture_and_resolve_pattern_in_body(deliver, email_integration):
    from incidents.models import Incident

    email_integration.options = {"dedup": "regex", "dedup_regex": r"host=(?P<key>[\w.-]+)",
                                 "resolve_pattern": r"STATE: CLEARED", "resolve_in_body": True}
    email_integration.save()
    to = address(email_integration)
    deliver(make_email(subject="Alert 10:01", body="host=db1 STATE: RAISED", to=to), to)
    deliver(make_email(subject="Alert 10:02", body="host=db1 STATE: RAISED", to=to), to)
    deliver(make_email(subject="Alert 10:03", body="host=db2 STATE: RAISED", to=to), to)
    db1 = Incident.objects.get(dedup_key="db1")
    assert db1.alert_count == 2
    deliver(make_email(subject="Alert 10:09", body="host=db1 STATE: CLEARED", to=to), to)
    db1.refresh_from_db()
    assert db1.status == "resolved"
    assert Incident.objects.get(dedup_key="db2").status == "triggered"


def test_creation_per_email_opens_one_incident_per_mail_and_recovery_resolves_them(
    deliver, email_integration
):
    from incidents.models import Incident

    email_integration.options = {"creation": "per_email"}
    email_integration.save()
    to = address(email_integration)
    deliver(make_email(subject="Backup failed", to=to), to)
    deliver(make_email(subject="Backup failed", to=to), to)
    assert Incident.objects.filter(status="triggered").count() == 2
    deliver(make_email(subject="Backup failed: RESOLVED", to=to), to)
    assert Incident.objects.filter(status="resolved").count() == 2


def test_creation_when_none_open_joins_the_open_incident(deliver, email_integration):
    from incidents.models import Incident

    email_integration.options = {"creation": "when_none_open"}
    email_integration.save()
    to = address(email_integration)
    deliver(make_email(subject="Backup failed", to=to), to)
    deliver(make_email(subject="Certificate expires soon", to=to), to)
    incident = Incident.objects.get()
    assert incident.alert_count == 2
    deliver(make_email(subject="All OK", to=to), to)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    deliver(make_email(subject="Certificate expires soon", to=to), to)
    assert Incident.objects.filter(status="triggered").count() == 1


def test_triage_rules_apply_to_email_alerts(deliver, email_integration, team_a):
    from incidents.models import Incident, TriageRule

    TriageRule.objects.create(team=team_a, name="db down is SEV1", match_keywords="database down",
                              set_severity="SEV1")
    to = address(email_integration)
    deliver(make_email(subject="DATABASE DOWN on db1", to=to), to)
    incident = Incident.objects.get()
    assert incident.severity == "SEV1"
    assert incident.timeline.filter(kind="triage").exists()


def test_severity_option(deliver, email_integration):
    from incidents.models import Incident

    email_integration.options = {"severity": "SEV2"}
    email_integration.save()
    to = address(email_integration)
    deliver(make_email(to=to), to)
    assert Incident.objects.get().severity == "SEV2"


def test_a_bad_option_regex_still_pages_and_says_why(deliver, email_integration):
    from incidents.models import Alert

    email_integration.options = {"dedup": "regex", "dedup_regex": "host=(unclosed"}
    email_integration.save()
    to = address(email_integration)
    row = deliver(make_email(subject="Disk full", to=to), to)
    assert row.status == "processed"
    alert = Alert.objects.get()
    assert alert.incident is not None
    assert "dedup_regex is not a valid regular expression" in alert.details


def test_options_validate_messages():
    from incidents.email_alerts import options_validate

    assert options_validate({}) == []
    assert options_validate({"dedup": "regex", "dedup_regex": r"(?P<key>\w+)", "creation": "per_email",
                             "severity": "sev1"}) == []
    errors = options_validate({"dedup": "regex", "creation": "sometimes", "severity": "huge",
                               "resolve_pattern": "("})
    assert "options.dedup_regex is required when options.dedup is 'regex'" in errors
    assert "options.creation must be 'per_subject', 'per_email' or 'when_none_open'" in errors
    assert "options.severity must be one of SEV1-SEV4" in errors
    assert any(e.startswith("options.resolve_pattern is not a valid regular expression") for e in errors)


def test_out_of_office_to_an_integration_is_refused_but_monitoring_auto_generated_mail_is_not(
    deliver, email_integration
):
    from incidents.models import Alert
    from ircore.models import SecurityLogEntry

    to = address(email_integration)
    ooo = make_email(subject="Automatic reply: Disk full on db1", to=to,
                     headers={"Auto-Submitted": "auto-replied"})
    assert deliver(ooo, to).status == "refused"
    assert SecurityLogEntry.objects.get().reason == "auto_reply"
    monitoring = make_email(subject="Disk full on db1", to=to,
                            headers={"Auto-Submitted": "auto-generated", "Precedence": "bulk"})
    assert deliver(monitoring, to).status == "processed"
    assert Alert.objects.count() == 1


def test_disabled_or_unknown_integration_address_changes_nothing(deliver, email_integration, service_a,
                                                                 make_integration):
    from incidents.models import Alert
    from ircore.inbound import recipient_lookup

    generic = make_integration(service_a, kind="generic")
    email_integration.enabled = False
    email_integration.save()
    for to in (address(email_integration), address(generic), "0123abcd@in.example.net"):
        assert recipient_lookup(to) is None
        row = deliver(make_email(to=to), to)
        assert row.status == "ignored", row.result
    assert Alert.objects.count() == 0


def test_the_same_message_delivered_twice_makes_one_alert(deliver, email_integration):
    from incidents.models import Alert
    from ircore.models import InboundMessage

    to = address(email_integration)
    msg = make_email(to=to)
    first = deliver(msg, to)
    second = deliver(msg, to)
    assert first.pk == second.pk
    assert InboundMessage.objects.count() == 1
    assert Alert.objects.count() == 1


def test_allowed_senders_option(deliver, email_integration):
    from incidents.email_alerts import options_validate
    from incidents.models import Alert
    from ircore.models import SecurityLogEntry

    email_integration.options = {"allowed_senders": ["*@monitoring.example.com"]}
    email_integration.save()
    to = address(email_integration)
    nagios = make_email(to=to, sender="Nagios <NAGIOS@monitoring.example.com>")
    assert deliver(nagios, to).status == "processed"
    assert deliver(make_email(to=to, sender="mallory@example.org"), to).status == "refused"
    assert Alert.objects.count() == 1
    entry = SecurityLogEntry.objects.get()
    assert (entry.reason, entry.sender) == ("not_allowed", "mallory@example.org")
    assert options_validate({"allowed_senders": "x"}) == [
        "options.allowed_senders must be a list of address patterns"]
