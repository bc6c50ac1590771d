"""``__any_of``: list membership as one parameter (ircore.lookups), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def services(team_a, team_b):
    return [Service.objects.create(team=team, name=f"svc-{n}") for n, team in enumerate([team_a, team_b] * 3)]


def test_matches_exactly_the_listed_ids(services):
    wanted = [services[0].pk, services[3].pk, services[5].pk]
    assert set(Service.objects.filter(pk__any_of=wanted)) == {services[0], services[3], services[5]}
    assert list(Service.objects.filter(pk__any_of=[])) == []
    assert list(Service.objects.filter(pk__any_of=[max(s.pk for s in services) + 1])) == []
    assert Service.objects.exclude(pk__any_of=wanted).count() == 3


def test_foreign_keys_and_any_iterable(services, team_b):
    assert set(Service.objects.filter(team_id__any_of=(team_b.pk,))) == set(services[1::2])
    assert set(Service.objects.filter(team__any_of=iter([team_b.pk]))) == set(services[1::2])


def test_the_list_is_one_parameter(services):
    ids = [s.pk for s in services] + list(range(10_000, 13_000))
    with CaptureQueriesContext(connection) as ctx:
        assert Service.objects.filter(pk__any_of=ids).count() == len(services)
    (sql,) = [q["sql"] for q in ctx.captured_queries]
    assert sql.count("10000") == 1 and len(sql) < 40_000


def test_bad_values_are_refused_before_the_database(services):
    with pytest.raises((TypeError, ValueError)):
        list(Service.objects.filter(pk__any_of=["abc"]))


def test_raw_statements_get_the_same_membership_for_text(team_a):
    """``any_of_sql`` for raw SQL (the applier's open-incident lock, the queue's DELETE):
    text values with quotes and non-ASCII characters come back exactly."""
    from ircore.lookups import any_of_sql

    names = ["zürich-api", 'say "hi"', "o'brien", "plain"]
    for name in names:
        Service.objects.create(team=team_a, name=name)
    Service.objects.create(team=team_a, name="not asked for")
    where, params = any_of_sql("name", [*names, "absent"], connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {Service._meta.db_table} WHERE {where}", params)
        assert sorted(row[0] for row in cursor.fetchall()) == sorted(names)
