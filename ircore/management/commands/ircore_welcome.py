"""Print where a local install is, how to log in, and a ready-to-paste command that
sends an example alert to each kind of integration (what `make run` shows on start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from incidents.models import Integration
from ircore.management.commands._examples import curl_command, email_address, email_command
from ircore.management.commands.ircore_demo import ADMIN_USERNAME, USERS, password_file
from ircore.models import TeamMembership


class Command(BaseCommand):
    help = "Print the console URL, the local admin login and example alert commands."

    def handle(self, *args: Any, **options: Any) -> None:
        base = settings.PUBLIC_URL
        out = self.stdout.write
        bold = self.style.HTTP_INFO
        out("")
        out(bold("ircore is starting"))
        out(f"  Console:   {base}/admin/")
        out(f"  API docs:  {base}/api/docs/   (schema: {base}/api/schema/)")
        out(f"  Login:     {self._login()}")
        demo = self._demo_users()
        if demo:
            out(f"  Demo users (same password): {demo}")
        out("")
        integrations = self._one_per_kind()
        if not integrations:
            out("No integration yet: add one in the console (Integrations) to send alerts.")
            return
        out(bold("Send an example alert (paste into another terminal):"))
        for integration in integrations:
            target = f"{integration.service.team} / {integration.service}"
            label = f"  # {integration.get_kind_display()}  ->  {target}"
            if integration.kind == Integration.Kind.EMAIL:
                out(f"{label}  (address {email_address(integration)}, via the smtp process)")
                out(f"  {email_command(integration)}")
                continue
            command = curl_command(integration)
            out(label)
            if command is None:
                out(f"  #   {integration.url}  (no endpoint for this kind in this version)")
            else:
                out(f"  {command}")
        out("")
        out(f"Stop with Ctrl-C; the data stays in {self._database()}.")
        out("")

    def _database(self) -> str:
        db = settings.DATABASES["default"]
        if db["ENGINE"].endswith("sqlite3"):
            return f"the SQLite file {db['NAME']}"
        return f"the PostgreSQL database {db['NAME']!r} on {db.get('HOST') or 'localhost'}"

    def _login(self) -> str:
        path = password_file()
        if not path.exists():
            return f"no generated password yet ({path}); run `manage.py ircore_demo`"
        password = path.read_text(encoding="utf-8").strip()
        user = get_user_model().objects.filter(username=ADMIN_USERNAME).first()
        if user is None:
            return f"user {ADMIN_USERNAME!r} does not exist; run `manage.py ircore_demo --admin-only`"
        note = "" if user.check_password(password) else "  (changed since: use your own password)"
        return f"{ADMIN_USERNAME} / {password}{note}   (kept in {path})"

    def _demo_users(self) -> str:
        names = [username for username, *_ in USERS]
        memberships = (
            TeamMembership.objects.filter(user__username__in=names)
            .select_related("team", "user")
            .order_by("team__name", "role", "user__username")
        )
        return ", ".join(f"{m.user.username} ({m.team} {m.role})" for m in memberships)

    def _one_per_kind(self) -> list[Integration]:
        seen: dict[str, Integration] = {}
        queryset = Integration.objects.filter(enabled=True).select_related("service__team").order_by("pk")
        for integration in queryset:
            seen.setdefault(integration.kind, integration)
        order = [kind for kind, _ in Integration.Kind.choices]
        return sorted(seen.values(), key=lambda i: order.index(i.kind))
