"""manage.py statuspage_export and the automatic re-export on change."""

import json
from pathlib import Path

import jsonschema
import pytest
from django.core.management import CommandError, call_command

from statuspage import services

SCHEMAS = Path(__file__).parent / "schemas"


def test_export_writes_a_complete_static_copy(tmp_path, page, api_component, capsys):
    incident = services.public_incident_create(
        page=page, name="Outage", body="x", component_statuses={api_component.pk: "major_outage"}
    )
    call_command("statuspage_export", "acme", str(tmp_path))
    assert "Wrote" in capsys.readouterr().out
    index = (tmp_path / "index.html").read_text()
    assert "Major System Outage" in index and "Payments API" in index
    assert "Outage" in (tmp_path / f"incidents/{incident.pk}/index.html").read_text()
    assert (tmp_path / "history/index.html").exists()
    assert (tmp_path / "feed.atom").read_text().startswith("<?xml")
    assert "<rss" in (tmp_path / "feed.rss").read_text()
    summary = json.loads((tmp_path / "api/v2/summary.json").read_text())
    jsonschema.validate(summary, json.loads((SCHEMAS / "summary.json").read_text()))
    for name in (
        "status",
        "components",
        "incidents",
        "incidents/unresolved",
        "scheduled-maintenances",
        "scheduled-maintenances/upcoming",
        "scheduled-maintenances/active",
    ):
        assert json.loads((tmp_path / f"api/v2/{name}.json").read_text())["page"]["id"] == "acme"
    assert not list(tmp_path.rglob(".tmp-*"))


def test_export_refuses_unknown_and_login_only_pages(tmp_path, page, private_page):
    with pytest.raises(CommandError, match="No status page with slug 'nope'.*acme"):
        call_command("statuspage_export", "nope", str(tmp_path))
    with pytest.raises(CommandError, match="login-only"):
        call_command("statuspage_export", "internal", str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_unwritable_directory_is_a_clear_error(tmp_path, page):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("statuspage_export", "acme", str(blocker / "sub"))


def test_every_change_re_exports_when_a_directory_is_set(
    tmp_path, settings, page, api_component, run_tasks_inline, django_capture_on_commit_callbacks
):
    settings.STATUSPAGE_EXPORT_DIR = str(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        services.component_set_status(component=api_component, status="partial_outage")
    assert "Partial System Outage" in (tmp_path / "acme/index.html").read_text()
    with django_capture_on_commit_callbacks(execute=True):
        services.component_set_status(component=api_component, status="operational")
    assert "All Systems Operational" in (tmp_path / "acme/index.html").read_text()


def test_a_burst_of_changes_queues_one_export(
    settings, tmp_path, page, api_component, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    settings.STATUSPAGE_EXPORT_DIR = str(tmp_path)
    before = OrmQ.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with django_capture_on_commit_callbacks(execute=True):
        for status in ("partial_outage", "major_outage", "operational"):
            services.component_set_status(component=api_component, status=status)
    queued = [q.task["func"] for q in OrmQ.objects.filter(id__gt=before)]
    assert queued.count("statuspage.tasks.export_page") == 1
