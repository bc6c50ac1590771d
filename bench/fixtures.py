"""Objects the ingestion benchmark needs, created through the ORM in a database that
``manage.py migrate`` has prepared. Run by bench/run.py as

    DATABASE_URL=postgres://... python -m bench.fixtures

and prints the integration tokens as JSON.
"""

from __future__ import annotations

import json
import os

import django

# A rate limit nobody reaches, so the benchmark measures ingestion, not the 429 path.
RATE_LIMIT = 10**9


def create() -> dict[str, str]:
    from incidents.models import Integration, Service
    from ircore.models import Team

    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    service, _ = Service.objects.get_or_create(team=team, name="checkout")
    tokens = {}
    for kind in (Integration.Kind.PAGERDUTY, Integration.Kind.ALERTMANAGER, Integration.Kind.GENERIC):
        integration, _ = Integration.objects.get_or_create(
            service=service, kind=kind, name=f"bench {kind}",
            defaults={"rate_limit_per_minute": RATE_LIMIT},
        )
        tokens[str(kind)] = integration.token
    tokens["service_id"] = str(service.pk)
    return tokens


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    print(json.dumps(create()))
