"""Reads for status pages: what a visitor sees, computed once per page change."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Count, Max, Min, Prefetch, QuerySet
from django.utils import timezone

from ircore import permissions
from statuspage.models import (
    Component,
    ComponentGroup,
    ComponentStatus,
    ComponentStatusChange,
    Impact,
    Maintenance,
    PublicIncident,
    PublicUpdate,
    StatusPage,
)
from statuspage.uptime import (
    STATUS_RANK,
    DayUptime,
    PastUptime,
    local_day_bounds,
    past_uptime,
    today_uptime,
    uptime_percent,
)

UPTIME_DAYS = 90

# Statuspage's page status: (indicator, description).
_STATUS_FROM_COMPONENT = {
    ComponentStatus.MAJOR_OUTAGE: ("critical", "Major System Outage"),
    ComponentStatus.PARTIAL_OUTAGE: ("major", "Partial System Outage"),
    ComponentStatus.DEGRADED_PERFORMANCE: ("minor", "Degraded Performance"),
    ComponentStatus.UNDER_MAINTENANCE: ("maintenance", "Service Under Maintenance"),
}
_STATUS_FROM_IMPACT = {
    Impact.CRITICAL: ("critical", "Major System Outage"),
    Impact.MAJOR: ("major", "Partial System Outage"),
    Impact.MINOR: ("minor", "Minor Service Outage"),
}
_INDICATOR_RANK = {"none": 0, "maintenance": 1, "minor": 2, "major": 3, "critical": 4}


def page_can_view(page: StatusPage, user: object) -> bool:
    if page.is_public:
        return True
    user = user or AnonymousUser()
    return bool(getattr(user, "is_authenticated", False)) and permissions.can_view_team(user, page.team_id)


def page_status(components: list[Component], open_incidents: list[PublicIncident]) -> tuple[str, str]:
    """(indicator, description): the worst of the components and of open incidents' impact."""
    best = ("none", "All Systems Operational")
    worst_component = max(
        (c.status for c in components),
        key=lambda s: STATUS_RANK.get(s, 0),
        default=ComponentStatus.OPERATIONAL,
    )
    candidates = [_STATUS_FROM_COMPONENT.get(worst_component, best)]
    candidates += [_STATUS_FROM_IMPACT[i.impact] for i in open_incidents if i.impact in _STATUS_FROM_IMPACT]
    return max(candidates + [best], key=lambda pair: _INDICATOR_RANK[pair[0]])


def _item_prefetches(components: bool) -> list[Prefetch]:
    prefetches = [Prefetch("updates", queryset=PublicUpdate.objects.order_by("-created_at", "-id"))]
    if components:
        prefetches.append(Prefetch("components", queryset=Component.objects.order_by("position", "id")))
    return prefetches


def published_incidents(page: StatusPage, *, components: bool = True) -> QuerySet[PublicIncident]:
    """Updates (newest first) and, unless ``components`` is false, components prefetched."""
    return (
        PublicIncident.objects.filter(page=page, published=True)
        .select_related("page")
        .prefetch_related(*_item_prefetches(components))
        .order_by("-started_at", "-id")
    )


def published_maintenances(page: StatusPage, *, components: bool = True) -> QuerySet[Maintenance]:
    """Updates (newest first) and, unless ``components`` is false, components prefetched."""
    return (
        Maintenance.objects.filter(page=page, published=True)
        .select_related("page")
        .prefetch_related(*_item_prefetches(components))
        .order_by("scheduled_for", "id")
    )


@dataclass
class ComponentView:
    component: Component
    days: list[DayUptime] = field(default_factory=list)
    uptime: float | None = None
    # days[:-1], memoized (see component_uptimes): display code keeps their markup.
    past: PastUptime | None = None


@dataclass
class GroupView:
    group: ComponentGroup | None
    components: list[ComponentView]

    @property
    def worst_status(self) -> str:
        return max(
            (c.component.status for c in self.components),
            key=lambda s: STATUS_RANK.get(s, 0),
            default=ComponentStatus.OPERATIONAL,
        )


@dataclass
class PageOverview:
    page: StatusPage
    indicator: str
    description: str
    groups: list[GroupView]
    components: list[Component]
    open_incidents: list[PublicIncident]
    active_maintenances: list[Maintenance]
    upcoming_maintenances: list[Maintenance]
    now: datetime


@dataclass
class ComponentUptime:
    days: list[DayUptime]
    # The days before today (days[:-1]), shared by every render of the day.
    past: PastUptime


# component id -> (key, PastUptime): the days before today of each component's window.
# See component_uptimes for why an entry cannot go stale.
_PAST_MEMO: dict[int, tuple[tuple, PastUptime]] = {}
_PAST_MEMO_MAX = 20_000


def uptime_memo_clear() -> None:
    """Forget every component's memoized past days (this process only)."""
    _PAST_MEMO.clear()


def _memo_key(component: Component, tz, days: int, today, fingerprints: dict, fallback: str) -> tuple:
    fingerprint = fingerprints.get(component.pk)
    return (tz, days, today, component.created_at, fingerprint, None if fingerprint else fallback)


def component_uptimes(
    components: list[Component], *, tz, now: datetime, days: int = UPTIME_DAYS, memo: bool = True
) -> dict[int, ComponentUptime]:
    """Per-day uptime of each component over the ``days`` days ending today (in ``tz``).

    The status before the first logged change of the window is that change's old status
    (every change goes through the service, so the log is a chain); without one, the
    component's current status.

    The days before today are memoized per process (``memo``): they depend only on
    the log rows of those days (or, without any, on the status they started from), the
    component's creation time, the time zone and the window. The log is append-only
    (the admin and the API cannot edit or delete rows; rows are stamped with the time of
    the change, and a change that is back-dated or committed late is still a new row):
    so the number of a component's rows in those days and their lowest and highest id,
    read on every render with one aggregate query, change whenever the rows do. Not
    inside a transaction, where rows that may still be rolled back are visible (and
    their ids may then be handed out again). A row edited in place (by hand, in SQL) is
    not noticed: call ``uptime_memo_clear`` or restart the web processes after that.
    """
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=days - 1)
    window_start = local_day_bounds(first_day, tz)[0]
    today_start = local_day_bounds(today, tz)[0]
    log = (
        ComponentStatusChange.objects.filter(component__in=[c.pk for c in components])
        .filter(changed_at__gte=window_start)
        .order_by("changed_at", "id")
    )
    fields = ("component_id", "changed_at", "old_status", "new_status")
    use_memo = memo and not connection.in_atomic_block
    past_rows: dict[int, list[tuple[datetime, str, str]]] = defaultdict(list)
    recent_rows: dict[int, list[tuple[datetime, str, str]]] = defaultdict(list)
    fingerprints: dict[int, tuple[int, int, int]] = {}
    if use_memo:
        # Today's rows (and any dated later), and what identifies the earlier ones.
        for component_id, at, old, new in log.filter(changed_at__gte=today_start).values_list(*fields):
            recent_rows[component_id].append((at, old, new))
        aggregate = (
            log.filter(changed_at__lt=today_start)
            .order_by()
            .values("component_id")
            .annotate(n=Count("id"), low=Min("id"), high=Max("id"))
            .values_list("component_id", "n", "low", "high")
        )
        fingerprints = {component_id: (n, low, high) for component_id, n, low, high in aggregate}
    else:
        for component_id, at, old, new in log.values_list(*fields):
            (recent_rows if at >= today_start else past_rows)[component_id].append((at, old, new))

    pasts: dict[int, PastUptime] = {}
    stale: list[tuple[Component, str]] = []
    for component in components:
        recent = recent_rows.get(component.pk)
        # Without rows before today, the days before today all had the status that
        # today's first change started from (or, without one, the current status).
        fallback = recent[0][1] if recent else component.status
        found = _PAST_MEMO.get(component.pk) if use_memo else None
        if found is not None and found[0] == _memo_key(component, tz, days, today, fingerprints, fallback):
            pasts[component.pk] = found[1]
        else:
            stale.append((component, fallback))
    if use_memo and any(c.pk in fingerprints for c, _f in stale):
        # The key is made from the rows read here: a row committed since the aggregate
        # query only makes the entry miss on the next render.
        ids: dict[int, list[int]] = defaultdict(list)
        rows = log.filter(component__in=[c.pk for c, _f in stale if c.pk in fingerprints])
        for pk, component_id, at, old, new in rows.filter(changed_at__lt=today_start).values_list(
            "id", *fields
        ):
            past_rows[component_id].append((at, old, new))
            ids[component_id].append(pk)
        fingerprints = {cid: (len(pks), min(pks), max(pks)) for cid, pks in ids.items()}
    for component, fallback in stale:
        changes = past_rows.get(component.pk, [])
        pasts[component.pk] = past = past_uptime(
            changes=[(at, new) for at, _old, new in changes],
            initial_status=changes[0][1] if changes else fallback,
            tz=tz,
            today=today,
            days=days,
            tracked_from=component.created_at,
        )
        if use_memo:
            if len(_PAST_MEMO) >= _PAST_MEMO_MAX:
                _PAST_MEMO.clear()
            _PAST_MEMO[component.pk] = (_memo_key(component, tz, days, today, fingerprints, fallback), past)

    result = {}
    for component in components:
        past = pasts[component.pk]
        today_day = today_uptime(
            changes=[(at, new) for at, _old, new in recent_rows.get(component.pk, [])],
            initial_status=past.status_at_end,
            tz=tz,
            now=now,
            tracked_from=component.created_at,
        )
        result[component.pk] = ComponentUptime(days=[*past.days, today_day], past=past)
    return result


def page_overview(page: StatusPage, *, now: datetime | None = None, with_uptime: bool = True) -> PageOverview:
    now = now or timezone.now()
    components = list(Component.objects.filter(page=page).order_by("position", "id"))
    groups = list(ComponentGroup.objects.filter(page=page).order_by("position", "id"))
    uptimes = (
        component_uptimes([c for c in components if c.show_uptime], tz=page.tz, now=now)
        if with_uptime
        else {}
    )
    views: dict[int | None, list[ComponentView]] = defaultdict(list)
    for component in components:
        if component.only_show_if_degraded and component.status == ComponentStatus.OPERATIONAL:
            continue
        found = uptimes.get(component.pk)
        days = found.days if found else []
        uptime = uptime_percent(days) if days else None
        past = found.past if found else None
        views[component.group_id].append(ComponentView(component, days, uptime, past))
    group_views = [GroupView(None, views[None])] if views.get(None) else []
    # Groups and loose components interleave by position, as on Statuspage.
    group_views += [GroupView(g, views[g.pk]) for g in groups if views.get(g.pk)]
    group_views.sort(key=lambda gv: gv.group.position if gv.group else -1)
    open_incidents = list(published_incidents(page).exclude(status=PublicIncident.Status.RESOLVED))
    maintenances = list(published_maintenances(page).exclude(status=Maintenance.Status.COMPLETED))
    active = [m for m in maintenances if m.status != Maintenance.Status.SCHEDULED]
    upcoming = [
        m for m in maintenances if m.status == Maintenance.Status.SCHEDULED and m.scheduled_until > now
    ]
    indicator, description = page_status(components, open_incidents)
    return PageOverview(
        page=page,
        indicator=indicator,
        description=description,
        groups=group_views,
        components=components,
        open_incidents=open_incidents,
        active_maintenances=active,
        upcoming_maintenances=upcoming,
        now=now,
    )


def incident_history(page: StatusPage, *, months: int = 3, now: datetime | None = None) -> list[tuple]:
    """[(first day of month, [incidents])] newest month first, for the last ``months`` months,
    months without incidents included (the page says "No incidents reported")."""
    now = (now or timezone.now()).astimezone(page.tz)
    first = now.date().replace(day=1)
    starts = [first]
    for _ in range(months - 1):
        prev = (starts[-1] - timedelta(days=1)).replace(day=1)
        starts.append(prev)
    incidents = list(
        published_incidents(page, components=False)
        .filter(status=PublicIncident.Status.RESOLVED)
        .filter(started_at__gte=datetime.combine(starts[-1], datetime.min.time(), tzinfo=page.tz))
    )
    maintenances = list(
        published_maintenances(page, components=False)
        .filter(status=Maintenance.Status.COMPLETED)
        .filter(scheduled_for__gte=datetime.combine(starts[-1], datetime.min.time(), tzinfo=page.tz))
    )
    buckets: dict[tuple[int, int], list] = defaultdict(list)
    for item in incidents:
        local = item.started_at.astimezone(page.tz)
        buckets[(local.year, local.month)].append(item)
    for item in maintenances:
        local = item.scheduled_for.astimezone(page.tz)
        buckets[(local.year, local.month)].append(item)
    result = []
    for start in starts:
        items = buckets.get((start.year, start.month), [])
        items.sort(key=lambda x: getattr(x, "started_at", None) or x.scheduled_for, reverse=True)
        result.append((start, items))
    return result


def recent_history(page: StatusPage, *, days: int = 14, now: datetime | None = None) -> list[tuple]:
    """[(day, [incidents and maintenance])] for the last ``days`` days in the page's time
    zone, newest first, days without anything included (the page says so)."""
    local_now = (now or timezone.now()).astimezone(page.tz)
    first = local_now.date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=page.tz)
    buckets: dict = defaultdict(list)
    for item in published_incidents(page, components=False).filter(
        status=PublicIncident.Status.RESOLVED, started_at__gte=since
    ):
        buckets[item.started_at.astimezone(page.tz).date()].append(item)
    for item in published_maintenances(page, components=False).filter(
        status=Maintenance.Status.COMPLETED, scheduled_for__gte=since
    ):
        buckets[item.scheduled_for.astimezone(page.tz).date()].append(item)
    result = []
    for offset in range(days):
        day = local_now.date() - timedelta(days=offset)
        items = buckets.get(day, [])
        items.sort(key=lambda x: getattr(x, "started_at", None) or x.scheduled_for, reverse=True)
        result.append((day, items))
    return result
