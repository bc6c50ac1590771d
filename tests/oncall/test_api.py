from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from oncall import selectors
from oncall.models import Override, Rotation, RotationMember, Schedule

NOW = datetime(2024, 3, 27, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_schedule_crud_and_scoping(manager, outsider, responder, team_a, team_b, weekly):
    r = api(manager).post(
        "/api/v1/schedules/",
        {"team": team_a.pk, "name": "Secondary", "timezone": "America/New_York"},
        format="json",
    )
    assert r.status_code == 201, r.json()
    assert r.json()["ical_url"].startswith("http://testserver/oncall/ical/schedule/")
    assert [s["name"] for s in api(manager).get("/api/v1/schedules/").json()["results"]] == [
        "Primary",
        "Secondary",
    ]
    assert api(outsider).get("/api/v1/schedules/").json()["results"] == []
    assert api(outsider).get(f"/api/v1/schedules/{weekly.schedule.pk}/").status_code == 404
    assert api(outsider).get(f"/api/v1/schedules/{weekly.schedule.pk}/oncall/").status_code == 404
    # Responders read but do not configure.
    assert (
        api(responder)
        .patch(f"/api/v1/schedules/{weekly.schedule.pk}/", {"name": "x"}, format="json")
        .status_code
        == 403
    )
    # Another team's id is answered like one that does not exist.
    r = api(manager).post("/api/v1/schedules/", {"team": team_b.pk, "name": "Sneaky"}, format="json")
    assert r.status_code == 400 and "team" in r.json()


def test_unknown_time_zone_is_400(manager, team_a):
    r = api(manager).post(
        "/api/v1/schedules/", {"team": team_a.pk, "name": "x", "timezone": "Europe/Atlantis"}, format="json"
    )
    assert r.status_code == 400
    assert "Unknown time zone" in r.json()["timezone"][0]
    assert not Schedule.objects.filter(name="x").exists()


def test_oncall_and_shifts_endpoints(manager, responder, secondary, weekly):
    schedule = weekly.schedule
    client = api(manager)
    r = client.get(f"/api/v1/schedules/{schedule.pk}/oncall/")
    assert r.status_code == 200
    assert r.json()["oncall"] == [
        {"user": responder.pk, "username": "rita", "source": "layer", "layer": weekly.pk, "override": None}
    ]
    # Without an offset, the instant is read in the schedule's zone; a "+" sent unencoded
    # arrives as a space and still works.
    r = client.get(f"/api/v1/schedules/{schedule.pk}/oncall/", {"at": "2024-04-01T09:00"})
    assert r.json()["at"] == "2024-04-01T09:00:00+02:00" and r.json()["oncall"][0]["user"] == secondary.pk
    r = client.get(f"/api/v1/schedules/{schedule.pk}/oncall/?at=2024-04-01T08:59:00+02:00")
    assert r.status_code == 200 and r.json()["oncall"][0]["user"] == responder.pk
    r = client.get(
        f"/api/v1/schedules/{schedule.pk}/shifts/",
        {"start": "2024-03-25T00:00:00Z", "end": "2024-04-08T00:00:00Z"},
    )
    assert r.status_code == 200
    data = r.json()
    assert data["timezone"] == "Europe/Berlin"
    assert [(s["start"], s["username"], s["source"]) for s in data["shifts"]] == [
        ("2024-03-25T00:00:00+00:00", "maya", "layer"),
        ("2024-03-25T08:00:00+00:00", "rita", "layer"),
        ("2024-04-01T07:00:00+00:00", "sam", "layer"),
    ]
    expected = selectors.schedule_shifts(
        schedule=schedule, start=datetime(2024, 3, 25, tzinfo=UTC), end=datetime(2024, 4, 8, tzinfo=UTC)
    )
    assert len(expected) == len(data["shifts"])


@pytest.mark.parametrize(
    "query, field, message",
    [
        ({"start": "2024-04-08T00:00:00Z", "end": "2024-04-01T00:00:00Z"}, "end", "after the start"),
        ({"start": "2024-04-01T00:00:00Z", "end": "2024-04-01T00:00:00Z"}, "end", "after the start"),
        ({"start": "next tuesday"}, "start", "not an ISO 8601"),
        ({"start": "2024-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end", "at most 366 days"),
    ],
)
def test_shifts_bad_input_is_400(manager, weekly, query, field, message):
    r = api(manager).get(f"/api/v1/schedules/{weekly.schedule.pk}/shifts/", query)
    assert r.status_code == 400
    assert message in r.json()[field]


def test_oncall_bad_instant_is_400(manager, weekly):
    r = api(manager).get(f"/api/v1/schedules/{weekly.schedule.pk}/oncall/", {"at": "2024-13-45T99:00"})
    assert r.status_code == 400 and "not an ISO 8601" in r.json()["at"]
    assert api(manager).get("/api/v1/oncall/", {"at": "soon"}).status_code == 400


def test_oncall_across_the_callers_teams(responder, outsider, weekly, team_b):
    other = Schedule.objects.create(team=team_b, name="Search primary", timezone="UTC")
    r = api(responder).get("/api/v1/oncall/")
    assert r.status_code == 200
    (entry,) = r.json()["schedules"]
    assert entry["name"] == "Primary" and entry["oncall"][0]["username"] == "rita"
    assert entry["next_handoff"] == "2024-04-01T07:00:00+00:00"
    (entry,) = api(outsider).get("/api/v1/oncall/").json()["schedules"]
    assert entry["schedule"] == other.pk and entry["oncall"] == []


def test_rotation_create_with_members_and_validation(manager, responder, secondary, outsider, schedule):
    client = api(manager)
    payload = {
        "schedule": schedule.pk,
        "name": "Days",
        "priority": 2,
        "shift_amount": 12,
        "shift_unit": "hours",
        "handoff_date": "2024-03-25",
        "handoff_time": "08:00",
        "members": [secondary.pk, responder.pk],
        "restrictions": [{"days": ["mon", "tue"], "start": "08:00", "end": "20:00"}],
    }
    r = client.post("/api/v1/rotations/", payload, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["members"] == [secondary.pk, responder.pk]
    rotation = Rotation.objects.get(name="Days")
    assert list(rotation.members.values_list("effective_from", flat=True)) == [None, None]
    bad = [
        ({"members": [outsider.pk]}, "members", "not members"),
        ({"members": [responder.pk, responder.pk]}, "members", "only once"),
        ({"shift_unit": "fortnights"}, "shift_unit", "not a valid shift unit"),
        ({"shift_amount": 0}, "shift_amount", ""),
        ({"restrictions": [{"days": ["mon"], "start": "8", "end": "20:00"}]}, "restrictions", "HH:MM"),
        ({"timezone": "Nowhere/Land"}, "timezone", "Unknown time zone"),
        ({"name": "Other", "priority": 2}, "non_field_errors", "unique"),
    ]
    for change, field, message in bad:
        r = client.post(
            "/api/v1/rotations/", {**payload, "name": "Bad", "priority": 3, **change}, format="json"
        )
        assert r.status_code == 400, (change, r.json())
        assert message in str(r.json()[field]), r.json()
    assert Rotation.objects.count() == 1 and RotationMember.objects.count() == 2


def test_member_change_via_api_keeps_history(manager, responder, secondary, weekly):
    client = api(manager)
    before = client.get(
        f"/api/v1/schedules/{weekly.schedule.pk}/shifts/",
        {"start": "2024-03-01T00:00:00Z", "end": "2024-03-27T10:00:00Z"},
    ).json()["shifts"]
    r = client.put(
        f"/api/v1/rotations/{weekly.pk}/members/", {"members": [secondary.pk, responder.pk]}, format="json"
    )
    assert r.status_code == 200, r.json()
    assert sum(1 for row in r.json() if row["effective_until"] is None) == 2
    after = client.get(
        f"/api/v1/schedules/{weekly.schedule.pk}/shifts/",
        {"start": "2024-03-01T00:00:00Z", "end": "2024-03-27T10:00:00Z"},
    ).json()["shifts"]
    assert after == before
    assert client.get(f"/api/v1/rotations/{weekly.pk}/").json()["members"] == [secondary.pk, responder.pk]
    r = client.put(f"/api/v1/rotations/{weekly.pk}/members/", {"members": [999]}, format="json")
    assert r.status_code == 400
    assert (
        api(responder)
        .put(f"/api/v1/rotations/{weekly.pk}/members/", {"members": []}, format="json")
        .status_code
        == 403
    )


def test_rotation_list_shows_current_members_in_a_fixed_number_of_queries(
    manager, responder, secondary, weekly
):
    from datetime import date

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from oncall.services import rotation_members_set

    # A change that starts tomorrow is not the current list yet.
    rotation_members_set(rotation=weekly, user_ids=[manager.pk], effective_from=NOW + timedelta(days=1))
    client = api(manager)
    client.get("/api/v1/rotations/")  # the user's team roles are cached after the first request
    with CaptureQueriesContext(connection) as few:
        rows = client.get("/api/v1/rotations/").json()["results"]
    assert [r["members"] for r in rows] == [[responder.pk, secondary.pk, manager.pk]]
    for i in range(4):
        extra = Rotation.objects.create(
            schedule=weekly.schedule, name=f"extra {i}", priority=10 + i, shift_unit="days",
            handoff_date=date(2024, 1, 1),
        )
        rotation_members_set(rotation=extra, user_ids=[secondary.pk, responder.pk])
    with CaptureQueriesContext(connection) as many:
        rows = client.get("/api/v1/rotations/").json()["results"]
    assert len(rows) == 5
    assert {r["name"]: r["members"] for r in rows}["Weekly"] == [responder.pk, secondary.pk, manager.pk]
    assert {r["name"]: r["members"] for r in rows}["extra 0"] == [secondary.pk, responder.pk]
    assert len(many.captured_queries) == len(few.captured_queries)


def test_overrides_by_responders_and_validation(responder, secondary, outsider, weekly):
    client = api(responder)
    url = "/api/v1/overrides/"
    ok = {
        "schedule": weekly.schedule.pk,
        "kind": "replace",
        "start": "2024-03-28T09:00:00+01:00",
        "end": "2024-03-28T17:00:00+01:00",
        "user": secondary.pk,
        "replaced_user": responder.pk,
    }
    r = client.post(url, ok, format="json")
    assert r.status_code == 201, r.json()
    assert Override.objects.get().created_by == responder
    r = client.get(f"/api/v1/schedules/{weekly.schedule.pk}/oncall/", {"at": "2024-03-28T12:00:00Z"})
    assert r.json()["oncall"][0] == {
        "user": secondary.pk,
        "username": "sam",
        "source": "override",
        "layer": None,
        "override": Override.objects.get().pk,
    }
    cases = [
        ({"end": "2024-03-28T08:00:00+01:00"}, "end", "after the start"),
        ({"user": outsider.pk}, "user", "does not exist"),
        ({"kind": "add"}, "replaced_user", "Only a replace"),
        ({"kind": "swap"}, "kind", "not a valid override kind"),
        ({"replaced_user": secondary.pk}, "replaced_user", "cannot replace themselves"),
        (
            {"start": "2024-03-28T16:00:00+01:00", "end": "2024-03-28T20:00:00+01:00"},
            "start",
            "Overlaps override",
        ),
    ]
    for change, field, message in cases:
        r = client.post(url, {**ok, **change}, format="json")
        assert r.status_code == 400, change
        assert message in str(r.json()[field]), r.json()
    assert Override.objects.count() == 1
    assert api(outsider).get(url).json()["results"] == []
    r = api(outsider).post(url, {**ok}, format="json")
    assert r.status_code == 400 and "schedule" in r.json()
    r = client.get(url, {"ends_after": "2024-03-29T00:00:00Z"})
    assert r.json()["results"] == []


def test_override_for_user_in_another_team_of_a_superuser_view(admin_user, outsider, weekly):
    r = api(admin_user).post(
        "/api/v1/overrides/",
        {
            "schedule": weekly.schedule.pk,
            "kind": "add",
            "start": "2024-03-28T09:00:00Z",
            "end": "2024-03-28T10:00:00Z",
            "user": outsider.pk,
        },
        format="json",
    )
    assert r.status_code == 400
    assert "not a member of the schedule's team" in r.json()["user"][0]


def test_api_shift_list_agrees_with_oncall_for_each_shift(manager, weekly, secondary):
    client = api(manager)
    client.post(
        "/api/v1/overrides/",
        {
            "schedule": weekly.schedule.pk,
            "kind": "add",
            "start": "2024-03-29T10:00:00Z",
            "end": "2024-03-30T10:00:00Z",
            "user": secondary.pk,
        },
        format="json",
    )
    shifts = client.get(
        f"/api/v1/schedules/{weekly.schedule.pk}/shifts/",
        {"start": "2024-03-27T00:00:00Z", "end": "2024-04-10T00:00:00Z"},
    ).json()["shifts"]
    for shift in shifts:
        mid = datetime.fromisoformat(shift["start"]) + timedelta(minutes=1)
        oncall = client.get(
            f"/api/v1/schedules/{weekly.schedule.pk}/oncall/", {"at": mid.isoformat().replace("+00:00", "Z")}
        ).json()["oncall"]
        assert (shift["user"] in {o["user"] for o in oncall}) or (shift["user"] is None and oncall == [])


def test_openapi_schema_documents_the_schedule_endpoints(manager):
    body = api(manager).get("/api/schema/").content.decode()
    for path in [
        "/api/v1/schedules/{id}/shifts/",
        "/api/v1/schedules/{id}/oncall/",
        "/api/v1/oncall/",
        "/api/v1/rotations/{id}/members/",
        "/api/v1/overrides/",
    ]:
        assert path in body


def test_oncall_for_one_person_across_schedules(responder, secondary, weekly, team_a):
    other = Schedule.objects.create(team=team_a, name="Database", timezone="UTC")
    Rotation.objects.create(schedule=other, name="all week", shift_unit="weeks", handoff_date="2024-01-01")
    from oncall.services import rotation_members_set

    rotation_members_set(rotation=other.rotations.get(), user_ids=[secondary.pk])
    client = api(responder)
    assert [s["name"] for s in client.get("/api/v1/oncall/", {"user": "me"}).json()["schedules"]] == [
        "Primary"
    ]
    names = [s["name"] for s in client.get("/api/v1/oncall/", {"user": secondary.pk}).json()["schedules"]]
    assert names == ["Database"]
    r = client.get("/api/v1/oncall/", {"user": "sam"})
    assert r.status_code == 400 and "user id" in r.json()["user"]


def test_member_change_planned_ahead_but_never_in_the_past(manager, responder, secondary, weekly):
    client = api(manager)
    url = f"/api/v1/rotations/{weekly.pk}/members/"
    r = client.put(url, {"members": [secondary.pk], "effective_from": "2024-03-01T00:00:00Z"}, format="json")
    assert r.status_code == 400 and "cannot start in the past" in str(r.json())
    r = client.put(
        url, {"members": [manager.pk], "effective_from": "2024-04-03T09:00:00+02:00"}, format="json"
    )
    assert r.status_code == 200
    oncall = f"/api/v1/schedules/{weekly.schedule.pk}/oncall/"
    assert client.get(oncall, {"at": "2024-04-03T08:59:00+02:00"}).json()["oncall"][0]["username"] == "sam"
    assert client.get(oncall, {"at": "2024-04-03T09:00:00+02:00"}).json()["oncall"][0]["username"] == "maya"
    assert client.get(oncall).json()["oncall"][0]["username"] == "rita"  # now: unchanged
    assert client.get(oncall, {"at": "2024-04-17T12:00:00+02:00"}).json()["oncall"][0]["username"] == "maya"
    # Until the change the rotation still lists the current members.
    assert client.get(f"/api/v1/rotations/{weekly.pk}/").json()["members"] == [
        responder.pk,
        secondary.pk,
        manager.pk,
    ]
