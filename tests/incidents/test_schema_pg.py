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


def test_without_pg_trgm_the_migration_goes_on_and_says_how_to_add_it(capsys):
    """A database user that may not create extensions: the migration must not fail (the
    rest of the install goes on), must not leave anything half made, and must print the
    statements an administrator runs later."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("incidents.migrations.0006_incident_title_trigram")
    with connection.cursor() as cursor:  # all of it is rolled back with the test's transaction
        cursor.execute(f"DROP INDEX {migration.INDEX}")
        cursor.execute("DROP EXTENSION pg_trgm")
        cursor.execute("CREATE ROLE ircore_no_extensions")
        cursor.execute("GRANT ircore_no_extensions TO CURRENT_USER")
        database = connection.ops.quote_name(connection.settings_dict["NAME"])
        cursor.execute(f"REVOKE CREATE ON DATABASE {database} FROM PUBLIC")
        cursor.execute("SET LOCAL ROLE ircore_no_extensions")
    with connection.schema_editor() as editor:
        migration.trigram_index_create(apps, editor)
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname = %s", [migration.INDEX])
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone() == (0,)
    printed = capsys.readouterr().out
    assert "pg_trgm could not be created" in printed
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm;" in printed and "gin_trgm_ops" in printed
