"""``field__any_of=[...]``: membership in a list sent as ONE parameter.

Django's ``__in`` writes one placeholder per value; a list of a few thousand ids then
costs more to compile and to parse (psycopg splits the statement text anew for every
length) than the query takes to run. Here the list is one PostgreSQL array
(``= ANY(%s)``) or one JSON text on SQLite (``IN (SELECT value FROM json_each(%s))``);
``any_of_sql`` writes the same for raw statements.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import Lookup


def any_of_sql(lhs: str, values: list[Any], vendor: str, *, array_type: str = "") -> tuple[str, list[Any]]:
    """SQL for "``lhs`` is one of ``values``" and its one parameter, for raw statements
    and for ``AnyOf``. ``array_type`` (PostgreSQL): the array's element type, where the
    values alone do not fix it (psycopg picks int2[] for small integers)."""
    if vendor == "postgresql":
        cast = f"::{array_type}[]" if array_type else ""
        return f"{lhs} = ANY(%s{cast})", [values]
    return f"{lhs} IN (SELECT value FROM json_each(%s))", [json.dumps(values)]


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        values = list(self.rhs)
        prep = self.lhs.output_field.get_prep_value
        return [prep(value) for value in values]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        sql, params = any_of_sql(lhs, self.rhs, connection.vendor, array_type="bigint")
        return sql, [*lhs_params, *params]


def lookups_register() -> None:
    # Integer primary keys and foreign keys (which keep lookups of their own).
    models.IntegerField.register_lookup(AnyOf)
    models.ForeignKey.register_lookup(AnyOf)
