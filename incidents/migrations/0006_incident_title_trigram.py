from django.db import migrations, transaction
from django.db.utils import DatabaseError

# The console's incident search is `title ILIKE '%term%'` (Django's icontains:
# UPPER(title::text) LIKE UPPER(...)). A B-tree cannot serve a substring, so PostgreSQL
# read all 100,000 incidents of the benchmark for every search; a trigram index on the
# same expression finds them directly. pg_trgm ships with PostgreSQL and is a trusted
# extension (13+): the database's owner may create it. Where it cannot be created the
# search still works, without the index. SQLite has neither: nothing to do.
INDEX = "incidents_incident_title_trgm"


def trigram_index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("incidents", "Incident")._meta.db_table)
    create_index = f"CREATE INDEX IF NOT EXISTS {INDEX} ON {table} USING gin (UPPER(title::text) gin_trgm_ops)"
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        print(f"\n  pg_trgm could not be created ({exc.__class__.__name__}: {str(exc).strip()}).\n"
              "  Incident search works without its index, slower. To add it, as a superuser:\n"
              f"    CREATE EXTENSION IF NOT EXISTS pg_trgm; {create_index};")
        return
    schema_editor.execute(create_index)


def trigram_index_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("incidents", "0005_queuedevent_payload"),
    ]

    operations = [
        migrations.RunPython(trigram_index_create, trigram_index_drop),
    ]
