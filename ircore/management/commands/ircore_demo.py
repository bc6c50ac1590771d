"""Load the demo data of a local install (what `make run` calls).

Idempotent: every object is looked up by its natural key and only created when missing;
nothing that exists is changed, so running it again keeps the user's own edits and data.

Also makes sure the local superuser exists. Its password is generated once and kept in
``<var>/admin_password`` (mode 0600) so `make run` can print it on every start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from incidents.events import AlertEvent, severity_from_text
from incidents.models import Alert, Integration, Service, TimelineEntry
from incidents.rule_templates import rule_templates_load
from incidents.services import alert_ingest, incident_acknowledge
from ircore.management.commands._demo_oncall import demo_paging_create
from ircore.models import Team, TeamMembership

ADMIN_USERNAME = "admin"

TEAMS = [
    {"slug": "payments", "name": "Payments", "description": "Payment APIs and checkout."},
    {"slug": "search", "name": "Search", "description": "Search and indexing."},
]
# (username, first name, team slug, role)
USERS = [
    ("maya", "Maya", "payments", TeamMembership.Role.MANAGER),
    ("rita", "Rita", "payments", TeamMembership.Role.RESPONDER),
    ("sam", "Sam", "payments", TeamMembership.Role.RESPONDER),
    ("otto", "Otto", "search", TeamMembership.Role.MANAGER),
    ("sid", "Sid", "search", TeamMembership.Role.RESPONDER),
]
SERVICES = [
    ("payments", "payments-api", "Card payments and refunds API."),
    ("payments", "checkout-web", "The checkout pages."),
    ("search", "search-api", "Full-text search API."),
]
# Every integration kind, all on the first team's first service.
INTEGRATIONS = [
    (Integration.Kind.GENERIC, "Generic webhook"),
    (Integration.Kind.PAGERDUTY, "PagerDuty Events v2"),
    (Integration.Kind.ALERTMANAGER, "Prometheus Alertmanager"),
    (Integration.Kind.GRAFANA, "Grafana alerting"),
    (Integration.Kind.EMAIL, "Email"),
    (Integration.Kind.HEARTBEAT, "Heartbeat"),
]
# Keys of incidents.rule_templates; route-by-label routes service=checkout-web alerts there.
DEMO_RULE_TEMPLATES = ["database-down", "suppress-test", "staging-low", "route-by-label"]
DEMO_ALERTS = [
    # (dedup key, summary, source severity word, acknowledged by)
    ("demo-payments-db", "payments-db: database down (demo)", "error", None),
    ("demo-checkout-errors", "Checkout error rate above 5% (demo)", "warning", "rita"),
]


def password_file() -> Path:
    return Path(settings.VAR_DIR) / "admin_password"


def local_password() -> str:
    """The generated password of the local install, created on first use."""
    path = password_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create with 0600 from the start: the secret is never readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(12))
    path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


class Command(BaseCommand):
    help = ("Create the local superuser and the demo data (teams, users, services, one "
            "integration of each kind, triage rules, an on-call schedule and a default escalation "
            "chain per team, two demo incidents). Safe to re-run.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--admin-only", action="store_true",
                            help="Only make sure the local superuser exists; no demo data.")

    def handle(self, *args: Any, admin_only: bool = False, **options: Any) -> None:
        password = local_password()
        self.created: list[str] = []
        with transaction.atomic():
            self._admin(password)
            if not admin_only:
                self._demo(password)
        if not admin_only:
            # Outside the transaction above: alert_ingest commits each event on its own,
            # like a real request, so on-commit signals fire as they would in production.
            self._demo_alerts()
        if self.created:
            self.stdout.write("Created: " + ", ".join(self.created))
        else:
            self.stdout.write("Demo data already present; nothing changed.")

    def _admin(self, password: str) -> None:
        User = get_user_model()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            return
        User.objects.create_superuser(
            username=ADMIN_USERNAME, email="admin@localhost", password=password, first_name="Admin"
        )
        self.created.append(f"superuser {ADMIN_USERNAME}")

    def _demo(self, password: str) -> None:
        User = get_user_model()
        teams: dict[str, Team] = {}
        for spec in TEAMS:
            teams[spec["slug"]], made = Team.objects.get_or_create(
                slug=spec["slug"], defaults={"name": spec["name"], "description": spec["description"]}
            )
            if made:
                self.created.append(f"team {spec['name']}")
        responders: dict[str, list[int]] = {}
        for username, first_name, slug, role in USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(
                    username=username, email=f"{username}@example.com", password=password,
                    first_name=first_name, is_staff=True,
                )
                self.created.append(f"user {username}")
            TeamMembership.objects.get_or_create(team=teams[slug], user=user, defaults={"role": role})
            if role == TeamMembership.Role.RESPONDER:
                responders.setdefault(slug, []).append(user.pk)
        services: dict[str, Service] = {}
        for slug, name, description in SERVICES:
            services[name], made = Service.objects.get_or_create(
                team=teams[slug], name=name, defaults={"description": description}
            )
            if made:
                self.created.append(f"service {name}")
        first = services["payments-api"]
        for kind, name in INTEGRATIONS:
            if not Integration.objects.filter(service=first, kind=kind).exists():
                Integration.objects.create(service=first, kind=kind, name=name)
                self.created.append(f"{kind} integration")
        self._triage_rules(teams["payments"], services)
        # Paging is set up before the demo alerts come in, so that they page someone.
        for slug, team in teams.items():
            self.created.extend(demo_paging_create(team=team, responder_ids=responders.get(slug, [])))

    def _triage_rules(self, team: Team, services: dict[str, Service]) -> None:
        # The console's ready-made templates; loading skips rules that already exist by name.
        result = rule_templates_load(
            team=team, keys=DEMO_RULE_TEMPLATES, route_service=services["checkout-web"]
        )
        self.created.extend(f"triage rule {rule.name!r}" for rule in result.created)

    def _demo_alerts(self) -> None:
        integration = Integration.objects.filter(
            service__team__slug="payments", service__name="payments-api", kind=Integration.Kind.GENERIC
        ).order_by("pk").first()
        if integration is None:
            return
        User = get_user_model()
        for dedup_key, summary, severity, acked_by in DEMO_ALERTS:
            if Alert.objects.filter(service__team=integration.service.team, dedup_key=dedup_key).exists():
                continue
            event = AlertEvent(
                summary=summary, severity=severity_from_text(severity) or "SEV3", dedup_key=dedup_key,
                source="ircore demo", labels={"env": "prod", "demo": "true"},
                payload={"summary": summary, "severity": severity, "dedup_key": dedup_key},
            )
            result = alert_ingest(integration=integration, event=event)
            self.created.append(f"demo alert {dedup_key}")
            user = User.objects.filter(username=acked_by).first() if acked_by else None
            if result.incident is not None and user is not None:
                incident_acknowledge(incident=result.incident, user=user, via=TimelineEntry.Via.WEB)
