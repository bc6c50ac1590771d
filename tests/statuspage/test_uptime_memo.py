"""The days before today are computed once a day per process (statuspage.selectors
component_uptimes): split arithmetic identical to the whole window, and a memo that
follows every new log row, midnight in the page's time zone, the time zone and the
component's creation time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statuspage.uptime import past_uptime, today_uptime, uptime_days

STATUSES = ["operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"]
ZONES = [
    ZoneInfo(name) for name in ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")
]
BASE = datetime(2026, 3, 1, tzinfo=UTC)  # the window crosses DST changes in March and April


# --------------------------------------------------------------------------- pure arithmetic


@settings(max_examples=300, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 40 * 86400), max_size=25),
    statuses=st.lists(st.sampled_from(STATUSES), min_size=25, max_size=25),
    initial=st.sampled_from(STATUSES),
    tz=st.sampled_from(ZONES),
    now_offset=st.integers(30 * 86400, 42 * 86400),
    days=st.integers(1, 35),
    created_offset=st.one_of(st.none(), st.integers(0, 42 * 86400)),
)
def test_past_days_and_today_are_exactly_the_whole_window(
    offsets, statuses, initial, tz, now_offset, days, created_offset
):
    changes = [(BASE + timedelta(seconds=s), statuses[i]) for i, s in enumerate(offsets)]
    now = BASE + timedelta(seconds=now_offset)
    created = BASE + timedelta(seconds=created_offset) if created_offset is not None else None
    whole = uptime_days(
        changes=changes, initial_status=initial, tz=tz, now=now, days=days, tracked_from=created
    )

    today = now.astimezone(tz).date()
    start = datetime.combine(today, datetime.min.time(), tzinfo=tz)
    past = past_uptime(
        changes=[c for c in changes if c[0] < start],
        initial_status=initial,
        tz=tz,
        today=today,
        days=days,
        tracked_from=created,
    )
    last = today_uptime(
        changes=[c for c in changes if c[0] >= start],
        initial_status=past.status_at_end,
        tz=tz,
        now=now,
        tracked_from=created,
    )
    assert [*past.days, last] == whole


def test_past_days_ignore_changes_from_today_on():
    tz = ZoneInfo("Europe/Berlin")
    today = datetime(2026, 3, 10).date()
    midnight = datetime(2026, 3, 10, tzinfo=tz)
    past = past_uptime(
        changes=[(midnight - timedelta(hours=1), "major_outage"), (midnight, "operational")],
        initial_status="operational",
        tz=tz,
        today=today,
        days=3,
    )
    assert [d.day.day for d in past.days] == [8, 9]
    assert past.days[-1].seconds_by_status == {"major_outage": 3600}
    assert past.status_at_end == "major_outage"


# --------------------------------------------------------------------------- the memo, on the database
# The memo is used only outside a transaction: these tests commit, as the web processes do.


@pytest.fixture
def memo(transactional_db):
    from statuspage import selectors

    selectors.uptime_memo_clear()
    yield selectors._PAST_MEMO
    selectors.uptime_memo_clear()


@pytest.fixture
def components(memo, page, group):
    from statuspage.models import Component, ComponentStatusChange

    made = []
    for i in range(3):
        component = Component.objects.create(page=page, group=group, name=f"C{i}", position=i)
        made.append(component)
    Component.objects.filter(page=page).update(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    # An outage of C0 every three days, C1 partly down over midnights, C2 never.
    rows = []
    for day in range(0, 90, 3):
        at = datetime(2026, 1, 1, 10, tzinfo=UTC) + timedelta(days=day)
        rows += [
            ComponentStatusChange(
                component=made[0], old_status="operational", new_status="major_outage", changed_at=at
            ),
            ComponentStatusChange(
                component=made[0],
                old_status="major_outage",
                new_status="operational",
                changed_at=at + timedelta(hours=2),
            ),
            ComponentStatusChange(
                component=made[1],
                old_status="operational",
                new_status="partial_outage",
                changed_at=at + timedelta(hours=12, minutes=30),
            ),
            ComponentStatusChange(
                component=made[1],
                old_status="partial_outage",
                new_status="operational",
                changed_at=at + timedelta(hours=14, minutes=10),
            ),
        ]
    ComponentStatusChange.objects.bulk_create(rows)
    return list(Component.objects.filter(page=page).order_by("position", "id"))


def _uptimes(page, now, *, memo=True):
    from statuspage.models import Component
    from statuspage.selectors import component_uptimes

    page.refresh_from_db()
    components = list(Component.objects.filter(page=page).order_by("position", "id"))
    return {pk: u.days for pk, u in component_uptimes(components, tz=page.tz, now=now, memo=memo).items()}


def _check(page, now):
    """Cold memo, warm memo and no memo agree."""
    first = _uptimes(page, now)
    again = _uptimes(page, now)
    direct = _uptimes(page, now, memo=False)
    assert first == again == direct
    return direct


def test_memo_gives_the_same_days_and_is_used(memo, page, components):
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    days = _check(page, now)
    assert set(memo) == {c.pk for c in components}
    assert sum(1 for d in days[components[0].pk] if d.seconds_by_status) > 20
    entries = dict(memo)
    _uptimes(page, now + timedelta(hours=3))  # same day: nothing recomputed
    assert all(memo[pk] is entries[pk] for pk in entries)


def test_a_back_dated_change_is_counted_at_once(memo, page, components):
    from statuspage import services
    from statuspage.models import ComponentStatusChange

    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    before = _check(page, now)
    clean = components[2]
    assert all(not d.seconds_by_status for d in before[clean.pk])
    # Through the service with an explicit time (as the clock's jobs do) ...
    services.component_set_status(
        component=clean, status="major_outage", at=datetime(2026, 3, 1, 8, tzinfo=UTC)
    )
    services.component_set_status(
        component=clean, status="operational", at=datetime(2026, 3, 1, 9, tzinfo=UTC)
    )
    after = _check(page, now)
    march_1 = [d for d in after[clean.pk] if d.day.isoformat() == "2026-03-01"][0]
    assert march_1.seconds_by_status == {"major_outage": 3600}
    # ... and a row written without any signal (bulk_create), as an import would.
    ComponentStatusChange.objects.bulk_create(
        [
            ComponentStatusChange(
                component=clean,
                old_status="operational",
                new_status="partial_outage",
                changed_at=datetime(2026, 2, 1, 8, tzinfo=UTC),
            ),
            ComponentStatusChange(
                component=clean,
                old_status="partial_outage",
                new_status="operational",
                changed_at=datetime(2026, 2, 1, 10, tzinfo=UTC),
            ),
        ]
    )
    latest = _check(page, now)
    feb_1 = [d for d in latest[clean.pk] if d.day.isoformat() == "2026-02-01"][0]
    assert feb_1.seconds_by_status == {"partial_outage": 7200}
    assert latest[components[0].pk] == before[components[0].pk]


def test_midnight_in_the_page_time_zone_moves_today_into_the_past(memo, page, components):
    from statuspage import services
    from statuspage.models import StatusPage

    tz = page.tz  # Europe/Berlin: midnight is 23:00 UTC in March
    evening = datetime(2026, 3, 15, 21, 0, tzinfo=tz)
    component = components[2]
    _check(page, evening)
    services.component_set_status(
        component=component, status="major_outage", at=evening + timedelta(minutes=30)
    )
    today_before = _check(page, evening + timedelta(hours=1))[component.pk][-1]
    assert today_before.seconds_by_status == {"major_outage": 1800}
    # 00:30 Berlin: the 15th is a past day now, memoized with the outage that went on
    # until midnight; the 16th starts in a major outage.
    after_midnight = datetime(2026, 3, 16, 0, 30, tzinfo=tz)
    days = _check(page, after_midnight)[component.pk]
    assert days[-2].day.isoformat() == "2026-03-15"
    assert days[-2].seconds_by_status == {"major_outage": 2.5 * 3600}
    assert days[-1].seconds_by_status == {"major_outage": 1800}
    # The same instant, 23:30 UTC, on a page in UTC: still the 15th, down since 20:30.
    StatusPage.objects.filter(pk=page.pk).update(time_zone="UTC")
    utc_days = _check(page, after_midnight)[component.pk]
    assert utc_days[-1].day.isoformat() == "2026-03-15"
    assert utc_days[-1].seconds_by_status == {"major_outage": 3 * 3600}


def test_the_page_time_zone_and_the_creation_time_are_part_of_the_key(memo, page, components):
    from statuspage.models import Component, StatusPage

    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    berlin = _check(page, now)
    StatusPage.objects.filter(pk=page.pk).update(time_zone="America/New_York")
    new_york = _check(page, now)
    assert new_york != berlin
    c1 = components[1].pk
    # C1's outages from 22:30 to 00:10 UTC: across midnight in Berlin, not in New York.
    assert sum(1 for d in new_york[c1] if d.seconds_by_status) < sum(
        1 for d in berlin[c1] if d.seconds_by_status
    )
    Component.objects.filter(pk=c1).update(created_at=datetime(2026, 3, 1, tzinfo=UTC))
    younger = _check(page, now)
    assert not any(d.has_data for d in younger[c1] if d.day.isoformat() < "2026-02-28")


def test_without_rows_in_the_window_the_past_days_have_the_status_of_then(memo, page, components):
    from statuspage import services
    from statuspage.models import Component, ComponentStatusChange

    component = components[2]
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    # Under maintenance since long before the window: no row in it.
    ComponentStatusChange.objects.create(
        component=component,
        old_status="operational",
        new_status="under_maintenance",
        changed_at=datetime(2025, 6, 1, tzinfo=UTC),
    )
    Component.objects.filter(pk=component.pk).update(status="under_maintenance")
    days = _check(page, now)[component.pk]
    assert all(d.worst_status == "under_maintenance" for d in days)
    # Back to operational at 12:00 Berlin: the past days keep their maintenance, today
    # has 12 h of it (from midnight).
    services.component_set_status(component=component, status="operational", at=now - timedelta(hours=1))
    days = _check(page, now)[component.pk]
    assert all(d.worst_status == "under_maintenance" for d in days[:-1])
    assert days[-1].seconds_by_status == {"under_maintenance": 12 * 3600}
    # The status the past days were in is part of the memo's key: a status set without a
    # log row (which only a hand edit can do) is followed too.
    ComponentStatusChange.objects.filter(
        component=component, changed_at__gte=now - timedelta(hours=2)
    ).delete()
    Component.objects.filter(pk=component.pk).update(status="major_outage")
    days = _check(page, now)[component.pk]
    assert all(d.worst_status == "major_outage" for d in days)


def test_rows_seen_inside_a_transaction_never_reach_the_memo(memo, page, components):
    from django.db import transaction

    from statuspage.models import ComponentStatusChange

    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    before = _check(page, now)
    memo.clear()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        ComponentStatusChange.objects.create(
            component=components[2],
            old_status="operational",
            new_status="major_outage",
            changed_at=datetime(2026, 3, 2, tzinfo=UTC),
        )
        inside = _uptimes(page, now)
        assert inside != before
        assert not memo
        raise Rollback
    assert _check(page, now) == before


def test_rendered_page_is_the_same_with_a_cold_and_a_warm_memo(memo, page, components, client):
    from django.core.cache import cache

    from statuspage import selectors

    first = client.get(f"/status/{page.slug}/").content
    cache.clear()
    warm = client.get(f"/status/{page.slug}/").content
    cache.clear()
    selectors.uptime_memo_clear()
    cold = client.get(f"/status/{page.slug}/").content
    assert first == warm == cold
    assert b"C0" in first and b"uptime per day for the last 90 days" in first


# --------------------------------------------------------------------------- memoized filters


@pytest.mark.parametrize("language", ["en-us", "de"])
def test_memoized_filters_give_what_the_built_in_ones_give(language):
    from django.template import Context, Template
    from django.utils import translation

    # The same instants in two zones, the ambiguous hour of a DST change (fold), a date.
    instants = [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 1, 12, tzinfo=UTC),
    ]
    source = (
        "{% load tz statuspage_display %}{% for zone in zones %}{% timezone zone %}{% for t in instants %}"
        "{{ t|FILTER:'c' }} {{ t|FILTER:'M j, H:i T' }} {{ t|FILTER:'F j, Y - H:i e' }}|"
        "{% endfor %}{% endtimezone %}{% endfor %}{{ day|FILTER:'M j, Y' }}"
        "{{ html|safe|TRUNCATE:3 }}{{ text|TRUNCATE:2 }}"
    )
    context = {
        "zones": ["Europe/Berlin", "UTC", "Europe/Berlin", "America/New_York"],
        "instants": instants,
        "day": datetime(2026, 5, 3).date(),
        "html": "<p>We are <strong>investigating elevated</strong> errors &amp; more</p>",
        "text": "<b>not html</b> but escaped here",
    }
    with translation.override(language):
        builtin = Template(source.replace("FILTER", "date").replace("TRUNCATE", "truncatewords_html"))
        memo = Template(source.replace("FILTER", "memo_date").replace("TRUNCATE", "memo_truncatewords_html"))
        expected = builtin.render(Context(context))
        assert memo.render(Context(context)) == expected
        assert memo.render(Context(context)) == expected  # from the memo
    assert "+01:00" in expected and "+02:00" in expected and "&lt;b&gt;" in expected


# --------------------------------------------------------------------------- component rows

# The template loop that statuspage.display.component_rows_html replaced, verbatim.
ROWS_TEMPLATE = """{% for r in g.rows %}<div class="comp">
<div class="row"><span class="name">{{ r.component.name }}</span>
<span class="st {{ r.component.status }}"><span aria-hidden="true">{{ r.symbol }}</span> \
{{ r.label }}</span></div>
{% if r.component.description %}<div class="desc">{{ r.component.description }}</div>{% endif %}
{% if r.bars %}{{ r.bars }}
<div class="axis"><span class="d90">{{ uptime_days }} days ago</span><span class="d30">30 days ago</span>\
<span class="line"></span><span>{{ r.uptime }} uptime{% if r.bad_days %}<span class="sr">, {{ r.bad_days }} \
day{{ r.bad_days|pluralize }} with problems</span>{% endif %}</span><span class="line"></span>\
<span>Today</span></div>{% endif %}
</div>{% endfor %}"""


def test_component_rows_are_what_the_template_loop_made():
    from django.template import Context, Template
    from django.utils.safestring import mark_safe

    from statuspage import display
    from statuspage.models import Component

    rows = []
    for i, (name, description, status, bad) in enumerate(
        [
            ('Payments <API> & "v2"', "Cards & <b>wallets</b>", "major_outage", 1),
            ("Website", "", "operational", 0),
            ("Search", "Full-text 'search'", "degraded_performance", 7),
            ("Hidden bars", "", "partial_outage", 2),
        ]
    ):
        component = Component(name=name, description=description, status=status)
        rows.append(
            {
                "component": component,
                "label": display.STATUS_LABEL[status],
                "symbol": display.STATUS_SYMBOL[status],
                "bars": mark_safe(f'<div class="barwrap"><svg>{i}</svg></div>') if i != 3 else "",
                "uptime": "99.95%" if i != 3 else "",
                "bad_days": bad,
            }
        )
    expected = Template(ROWS_TEMPLATE).render(Context({"g": {"rows": rows}, "uptime_days": 90}))
    assert display.component_rows_html(rows, 90) == expected
    assert "&lt;API&gt; &amp; &quot;v2&quot;" in expected and "1 day with problems" in expected
