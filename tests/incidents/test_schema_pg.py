"""PostgreSQL storage choices of the incidents table (migration 0004): room on each page
for HOT updates, and no single-column index that a composite one already serves."""

from __future__ import annotations

import pytest
from django.db import connection

from incidents.models import Incident

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _one_row(sql: str, params: list) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def test_incident_pages_keep_room_for_hot_updates():
    (options,) = _one_row("SELECT reloptions FROM pg_class WHERE relname = %s", [Incident._meta.db_table])
    assert "fillfactor=80" in (options or [])


def test_team_and_service_are_indexed_only_through_the_composite_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " WHERE t.relname = %s GROUP BY i.indexrelid",
            [Incident._meta.db_table],
        )
        indexed = [tuple(row[0]) for row in cursor.fetchall()]
    assert ("team_id",) not in indexed and ("service_id",) not in indexed
    assert ("team_id", "triggered_at") in indexed
    assert ("service_id", "dedup_key") in indexed


def test_title_search_can_use_the_trigram_index():
    """The index (migration 0006) must be on the very expression Django writes for
    ``title__icontains``, or PostgreSQL reads every incident for each console search."""
    sql, params = (Incident.objects.filter(title__icontains="certificate").order_by().values("pk")
                   .query.sql_with_params())
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "incidents_incident_title_trgm" in plan, plan
