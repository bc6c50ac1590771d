"""Named, gap-free sequences (INC-<n>, PRB-<n>) shared by every app."""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction

from ircore.models import Counter


def counter_next(*, name: str) -> int:
    """The next value of sequence ``name``; call inside the transaction that uses it.

    The UPDATE takes the row lock until commit, so two writers can never read the same
    value; on SQLite the IMMEDIATE transaction already serializes writers."""
    value = _increment(name)
    if value is None:
        try:
            with transaction.atomic():
                Counter.objects.create(name=name, value=1)
                return 1
        except IntegrityError:
            value = _increment(name)
    assert value is not None
    return value


def _increment(name: str) -> int | None:
    # One statement: UPDATE ... RETURNING gives the value this UPDATE wrote (under its
    # row lock), where the ORM needs a second SELECT for it (PostgreSQL and SQLite
    # 3.35+ both have RETURNING; Django needs 3.31+ but the batch inserts already
    # rely on 3.35).
    q = connection.ops.quote_name
    table, value, key = q(Counter._meta.db_table), q("value"), q("name")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {value} = {value} + 1 WHERE {key} = %s RETURNING {value}", [name])
        row = cursor.fetchone()
    return row[0] if row else None
