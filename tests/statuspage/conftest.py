"""Status page fixtures: a page of team A with a group and components."""

from __future__ import annotations

import pytest


@pytest.fixture
def page(team_a):
    from statuspage.models import StatusPage

    return StatusPage.objects.create(team=team_a, slug="acme", title="Acme Status", time_zone="Europe/Berlin")


@pytest.fixture
def group(page):
    from statuspage.models import ComponentGroup

    return ComponentGroup.objects.create(page=page, name="Payments", position=1, expanded=True)


@pytest.fixture
def api_component(page, group):
    from statuspage.models import Component

    return Component.objects.create(page=page, group=group, name="Payments API", position=1)


@pytest.fixture
def web_component(page):
    from statuspage.models import Component

    return Component.objects.create(page=page, name="Website", position=0)


@pytest.fixture
def private_page(team_a):
    from statuspage.models import StatusPage

    return StatusPage.objects.create(
        team=team_a, slug="internal", title="Internal Status", visibility="login_only"
    )


@pytest.fixture
def run_tasks_inline(monkeypatch):
    """django-q2's own sync switch: async_task runs the task in-process, as a worker would."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
