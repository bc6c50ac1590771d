from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from oncall import selectors
from oncall.models import CalendarFeed, Override, Rotation, RotationMember, Schedule
from oncall.services import override_create, rotation_members_set

NOW = datetime(2024, 3, 27, 10, tzinfo=UTC)  # Wednesday, 11:00 Berlin


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def change_url(schedule: Schedule) -> str:
    return reverse("admin:oncall_schedule_change", args=[schedule.pk])


def inline_data(schedule: Schedule, rotations: list[dict]) -> dict:
    data = {
        "team": schedule.team_id,
        "name": schedule.name,
        "description": "",
        "timezone": schedule.timezone,
        "rotations-TOTAL_FORMS": len(rotations),
        "rotations-INITIAL_FORMS": sum(1 for r in rotations if r.get("id")),
        "rotations-MIN_NUM_FORMS": 0,
        "rotations-MAX_NUM_FORMS": 1000,
    }
    for i, rot in enumerate(rotations):
        for key, value in rot.items():
            data[f"rotations-{i}-{key}"] = value
        data[f"rotations-{i}-schedule"] = schedule.pk
    return data


def rotation_fields(rotation: Rotation, members: str) -> dict:
    return {
        "id": rotation.pk,
        "name": rotation.name,
        "priority": rotation.priority,
        "shift_amount": rotation.shift_amount,
        "shift_unit": rotation.shift_unit,
        "handoff_date": rotation.handoff_date.isoformat(),
        "handoff_time": "09:00",
        "timezone": "",
        "restrictions": "[]",
        "members": members,
    }


def test_changelist_shows_oncall_now_and_next_handoff_without_n_plus_one(client, manager, weekly, team_a):
    client.force_login(manager)
    url = reverse("admin:oncall_schedule_changelist")
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    # Week of Mar 25 is week 12 from Jan 1: 12 % 3 = 0 -> rita.
    assert "Rita" in body and "Mon 01 Apr 09:00 (Europe/Berlin)" in body
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(5):
        extra = Schedule.objects.create(team=team_a, name=f"extra {i}", timezone="UTC")
        r = Rotation.objects.create(
            schedule=extra, name="r", shift_unit="days", handoff_date=date(2024, 1, 1)
        )
        rotation_members_set(rotation=r, user_ids=[manager.pk])
    with CaptureQueriesContext(connection) as many:
        body = client.get(url).content.decode()
    assert body.count("Maya") >= 5
    assert len(many.captured_queries) == len(few.captured_queries)


def test_outsider_sees_no_schedule_of_another_team(client, outsider, weekly):
    client.force_login(outsider)
    assert "Primary" not in client.get(reverse("admin:oncall_schedule_changelist")).content.decode()
    assert client.get(change_url(weekly.schedule)).status_code == 302  # "does not exist" redirect
    response = client.post(reverse("admin:oncall_schedule_override", args=[weekly.schedule.pk]), {})
    assert response.status_code == 404


def test_change_page_renders_the_timeline(client, manager, weekly, secondary):
    schedule = weekly.schedule
    Rotation.objects.create(
        schedule=schedule, name="Empty layer", priority=7, shift_unit="days", handoff_date=date(2024, 1, 1)
    )
    override_create(
        schedule=schedule,
        kind="replace",
        start=NOW + timedelta(days=1),
        end=NOW + timedelta(days=1, hours=6),
        user_id=secondary.pk,
    )
    client.force_login(manager)
    response = client.get(change_url(schedule))
    assert response.status_code == 200
    timeline = response.context["timeline"]
    assert [row.kind for row in timeline.rows] == ["final", "overrides", "layer", "layer"]
    assert timeline.start == datetime(2024, 3, 26, 23, tzinfo=UTC)  # local midnight, CET
    assert len(timeline.days) == 14
    assert abs(sum(d.width for d in timeline.days) - 100) < 0.01
    # Spring-forward day is narrower than a normal one.
    widths = {d.label: d.width for d in timeline.days}
    assert widths["Sun 31"] < widths["Sat 30"]
    final = timeline.rows[0]
    assert any(b.css == "override" and b.label == "Sam" for b in final.bars)
    body = response.content.decode()
    assert 'id="quick-override"' in body
    block = body.split('id="schedule-timeline"')[1].split("Red: nobody on call")[0]
    assert "<script" not in block and "oc-bar oc-override" in block and "left:" in block


def test_empty_schedule_timeline_is_one_red_gap(client, manager, schedule):
    client.force_login(manager)
    response = client.get(change_url(schedule))
    (final,) = response.context["timeline"].rows
    assert [(b.css, b.width) for b in final.bars] == [("gap", 100.0)]
    assert "oc-bar oc-gap" in response.content.decode()


def test_inline_member_edit_applies_from_now_and_keeps_history(client, manager, weekly, responder, secondary):
    client.force_login(manager)
    before = selectors.schedule_shifts(
        schedule=weekly.schedule, start=datetime(2024, 3, 1, tzinfo=UTC), end=NOW
    )
    data = inline_data(weekly.schedule, [rotation_fields(weekly, "sam, rita")])
    response = client.post(change_url(weekly.schedule), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert (
        selectors.schedule_shifts(schedule=weekly.schedule, start=datetime(2024, 3, 1, tzinfo=UTC), end=NOW)
        == before
    )
    # Week 12: [sam, rita][12 % 2] = sam from now on.
    assert selectors.schedule_oncall_at(schedule=weekly.schedule, at=NOW)[0].user_id == secondary.pk
    assert RotationMember.objects.filter(rotation=weekly, effective_from=NOW).count() == 2


def test_change_page_lists_layer_members_in_a_fixed_number_of_queries(client, manager, weekly, secondary):
    # A change that starts tomorrow is not the current list yet.
    rotation_members_set(rotation=weekly, user_ids=[secondary.pk], effective_from=NOW + timedelta(days=1))
    client.force_login(manager)
    client.get(change_url(weekly.schedule))
    with CaptureQueriesContext(connection) as few:
        response = client.get(change_url(weekly.schedule))
    (form,) = response.context["inline_admin_formsets"][0].formset.forms
    assert form.initial["members"] == "rita, sam, maya"
    for i in range(4):
        extra = Rotation.objects.create(
            schedule=weekly.schedule, name=f"extra {i}", priority=10 + i, shift_unit="days",
            handoff_date=date(2024, 1, 1),
        )
        rotation_members_set(rotation=extra, user_ids=[secondary.pk])
    with CaptureQueriesContext(connection) as many:
        response = client.get(change_url(weekly.schedule))
    forms = response.context["inline_admin_formsets"][0].formset.forms
    assert [f.initial["members"] for f in forms] == ["sam"] * 4 + ["rita, sam, maya"]
    assert len(many.captured_queries) == len(few.captured_queries)
    # Saved unchanged, the lists stay as they are.
    rows = RotationMember.objects.count()
    fields = [rotation_fields(f.instance, f.initial["members"]) for f in forms]
    response = client.post(change_url(weekly.schedule), inline_data(weekly.schedule, fields))
    assert response.status_code == 302, response.context and response.context["errors"]
    assert RotationMember.objects.count() == rows


def test_inline_member_edit_rejects_unknown_and_outsiders(client, manager, weekly, outsider):
    client.force_login(manager)
    for members, message in [
        ("rita, ghost", "Unknown username(s): ghost"),
        ("rita, otto", "Not members of the schedule&#x27;s team: otto"),
    ]:
        response = client.post(
            change_url(weekly.schedule), inline_data(weekly.schedule, [rotation_fields(weekly, members)])
        )
        assert response.status_code == 200
        assert message in response.content.decode()
    assert RotationMember.objects.filter(rotation=weekly).count() == 3


def test_new_layer_inline_gets_members_since_the_start(client, manager, weekly, responder):
    client.force_login(manager)
    new = {
        "name": "Nights",
        "priority": 3,
        "shift_amount": 1,
        "shift_unit": "days",
        "handoff_date": "2024-01-01",
        "handoff_time": "18:00",
        "timezone": "",
        "members": "rita",
        "restrictions": '[{"days": ["mon"], "start": "18:00", "end": "08:00"}]',
    }
    response = client.post(
        change_url(weekly.schedule),
        inline_data(weekly.schedule, [rotation_fields(weekly, "rita, sam, maya"), new]),
    )
    assert response.status_code == 302
    nights = Rotation.objects.get(name="Nights")
    assert list(nights.members.values_list("user_id", "effective_from")) == [(responder.pk, None)]


def test_quick_override_uses_schedule_local_time(client, responder, secondary, weekly):
    client.force_login(responder)  # responders can arrange cover
    url = reverse("admin:oncall_schedule_override", args=[weekly.schedule.pk])
    response = client.post(
        url,
        {
            "kind": "replace",
            "user": secondary.pk,
            "replaced_user": responder.pk,
            "start": "2024-03-28T09:00",
            "end": "2024-03-28T17:00",
            "note": "dentist",
        },
    )
    assert response.status_code == 302
    override = Override.objects.get()
    assert override.start == datetime(2024, 3, 28, 8, tzinfo=UTC) and override.created_by == responder
    assert (
        selectors.schedule_oncall_at(schedule=weekly.schedule, at=datetime(2024, 3, 28, 12, tzinfo=UTC))[
            0
        ].user_id
        == secondary.pk
    )


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"kind": "add", "start": "2024-03-28T17:00", "end": "2024-03-28T09:00"},
            "The end must be after the start",
        ),
        ({"kind": "add", "start": "yesterday", "end": "2024-03-28T09:00"}, "Enter a valid date/time"),
        (
            {"kind": "teleport", "start": "2024-03-28T09:00", "end": "2024-03-28T10:00"},
            "Select a valid choice",
        ),
    ],
)
def test_quick_override_bad_input_saves_nothing(client, manager, secondary, weekly, data, message):
    client.force_login(manager)
    url = reverse("admin:oncall_schedule_override", args=[weekly.schedule.pk])
    response = client.post(url, {"user": secondary.pk, **data}, follow=True)
    assert message in " ".join(str(m) for m in response.context["messages"])
    assert not Override.objects.exists()


def test_quick_override_refuses_people_outside_the_team(client, manager, outsider, weekly):
    client.force_login(manager)
    url = reverse("admin:oncall_schedule_override", args=[weekly.schedule.pk])
    response = client.post(
        url,
        {"kind": "add", "user": outsider.pk, "start": "2024-03-28T09:00", "end": "2024-03-28T10:00"},
        follow=True,
    )
    assert "Select a valid choice" in " ".join(str(m) for m in response.context["messages"])
    assert not Override.objects.exists()


def test_template_and_token_need_a_manager(client, responder, manager, schedule, secondary):
    template_url = reverse("admin:oncall_schedule_template", args=[schedule.pk])
    regen_url = reverse("admin:oncall_schedule_regenerate_ical", args=[schedule.pk])
    data = {"template": "business_hours", "members": [responder.pk, secondary.pk], "start": "2024-03-25"}
    client.force_login(responder)
    assert client.post(template_url, data).status_code == 403
    assert client.post(regen_url).status_code == 403
    client.force_login(manager)
    old = schedule.ical_token
    assert client.post(template_url, data).status_code == 302
    assert list(schedule.rotations.order_by("-priority").values_list("name", flat=True)) == [
        "Business hours",
        "After hours",
    ]
    assert client.post(regen_url).status_code == 302
    schedule.refresh_from_db()
    assert schedule.ical_token != old
    response = client.post(template_url, {"template": "nope", "start": "2024-03-25"}, follow=True)
    assert "Select a valid choice" in " ".join(str(m) for m in response.context["messages"])
    assert schedule.rotations.count() == 2


def test_my_shifts_lists_upcoming_shifts_and_feed(client, secondary, weekly):
    client.force_login(secondary)
    response = client.get(reverse("admin:oncall_my_shifts"))
    assert response.status_code == 200
    rows = response.context["rows"]
    # sam has week 13 (Apr 1) of [rita, sam, maya]; 28 days ahead also holds week 16 (Apr 22).
    assert [r["start"].strftime("%a %d %b %H:%M") for r in rows] == ["Mon 01 Apr 09:00", "Mon 22 Apr 09:00"]
    body = response.content.decode()
    assert "Mon 01 Apr 09:00" in body and "Mon 22 Apr 09:00" in body  # rendered in the schedule's zone
    feed = CalendarFeed.objects.get(user=secondary)
    assert feed.token in response.content.decode()
    client.post(reverse("admin:oncall_my_feed_regenerate"))
    assert CalendarFeed.objects.get(user=secondary).token != feed.token


def test_override_admin_validates_team_members(client, manager, outsider, weekly, secondary):
    client.force_login(manager)
    url = reverse("admin:oncall_override_add")
    base = {
        "schedule": weekly.schedule.pk,
        "kind": "add",
        "start_0": "2024-03-28",
        "start_1": "09:00",
        "end_0": "2024-03-28",
        "end_1": "10:00",
        "note": "",
    }
    response = client.post(url, {**base, "user": outsider.pk})
    assert response.status_code == 200 and not Override.objects.exists()
    response = client.post(url, {**base, "user": secondary.pk, "end_1": "08:00"})
    assert "The end must be after the start" in response.content.decode()
    response = client.post(url, {**base, "user": secondary.pk})
    assert response.status_code == 302 and Override.objects.get().created_by == manager


def test_handoff_time_field_default(weekly):
    assert weekly.handoff_time == time(9)


def test_dashboard_shows_who_is_on_call_and_my_next_shift(client, responder, outsider, weekly):
    client.force_login(responder)
    body = client.get(reverse("admin:index")).content.decode()
    panel = body.split('id="oncall-now"')[1].split("</table>")[0]
    assert "you are on call</strong> until Mon 01 Apr 09:00 (Europe/Berlin)" in panel
    assert "Primary" in panel and "Rita" in panel and "Mon 01 Apr 09:00" in panel
    client.force_login(outsider)
    assert 'id="oncall-now"' not in client.get(reverse("admin:index")).content.decode()


def test_timeline_override_labels_say_who_covers_whom(client, manager, responder, secondary, weekly):
    override_create(
        schedule=weekly.schedule,
        kind="replace",
        start=NOW + timedelta(hours=1),
        end=NOW + timedelta(hours=2),
        user_id=secondary.pk,
        replaced_user_id=responder.pk,
    )
    override_create(
        schedule=weekly.schedule,
        kind="add",
        start=NOW + timedelta(hours=3),
        end=NOW + timedelta(hours=4),
        user_id=manager.pk,
    )
    client.force_login(manager)
    rows = client.get(change_url(weekly.schedule)).context["timeline"].rows
    assert [b.label for b in rows[1].bars] == ["Sam for Rita", "+ Maya"]
    assert "Wed 27 Mar 12:00 – Wed 27 Mar 13:00" in client.get(change_url(weekly.schedule)).content.decode()
    # The iCal URL on the page is absolute, ready to paste into a calendar.
    body = client.get(change_url(weekly.schedule)).content.decode()
    assert f"http://testserver/oncall/ical/schedule/{weekly.schedule.ical_token}.ics" in body


def test_superuser_revokes_personal_feeds_others_cannot(client, admin_user, manager, secondary):
    from oncall.services import calendar_feed_get_or_create

    feed = calendar_feed_get_or_create(user=secondary)
    url = reverse("admin:oncall_calendarfeed_changelist")
    client.force_login(manager)
    assert client.get(url).status_code == 403
    client.force_login(admin_user)
    response = client.post(url, {"action": "regenerate", "_selected_action": [feed.pk]})
    assert response.status_code == 302
    assert CalendarFeed.objects.get(pk=feed.pk).token != feed.token
    assert client.get(f"/oncall/ical/user/{feed.token}.ics").status_code == 404


def test_add_page_creates_schedule_with_a_layer_and_members(client, manager, responder, secondary, team_a):
    client.force_login(manager)
    data = {
        "team": team_a.pk,
        "name": "New",
        "description": "",
        "timezone": "Asia/Tokyo",
        "rotations-TOTAL_FORMS": 1,
        "rotations-INITIAL_FORMS": 0,
        "rotations-MIN_NUM_FORMS": 0,
        "rotations-MAX_NUM_FORMS": 1000,
        "rotations-0-name": "Week",
        "rotations-0-priority": 1,
        "rotations-0-shift_amount": 1,
        "rotations-0-shift_unit": "weeks",
        "rotations-0-handoff_date": "2024-03-25",
        "rotations-0-handoff_time": "10:00",
        "rotations-0-timezone": "",
        "rotations-0-restrictions": "[]",
        "rotations-0-members": "sam, rita",
    }
    response = client.post(reverse("admin:oncall_schedule_add"), data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    schedule = Schedule.objects.get(name="New")
    oncall = selectors.schedule_oncall_at(schedule=schedule, at=NOW)
    assert [o.user_id for o in oncall] == [secondary.pk]
    bad = {**data, "name": "Bad", "timezone": "Tokyo"}
    response = client.post(reverse("admin:oncall_schedule_add"), bad)
    assert response.status_code == 200 and "Unknown time zone" in response.content.decode()
    assert not Schedule.objects.filter(name="Bad").exists() and Rotation.objects.count() == 1


def test_change_page_does_not_move_a_schedule_to_another_team(client, admin_user, weekly, team_b):
    client.force_login(admin_user)
    data = inline_data(weekly.schedule, [rotation_fields(weekly, "rita, sam, maya")])
    response = client.post(change_url(weekly.schedule), {**data, "team": team_b.pk})
    assert response.status_code == 302
    weekly.schedule.refresh_from_db()
    assert weekly.schedule.team.slug == "payments"


def test_names_are_escaped_in_the_timeline_and_dashboard(client, manager, responder, weekly):
    responder.first_name = "<script>alert(1)</script>"
    responder.save()
    client.force_login(manager)
    for url in [
        change_url(weekly.schedule),
        reverse("admin:index"),
        reverse("admin:oncall_schedule_changelist"),
    ]:
        body = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
