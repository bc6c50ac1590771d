"""``field__any_of=[...]``: membership in a list sent as ONE parameter.

Django's ``__in`` writes one placeholder per value; a list of a few thousand ids then
costs more to compile and to parse (psycopg splits the statement text anew for every
length) than the query takes to run. Here the list is one PostgreSQL array
(``= ANY(%s)``) or one JSON text on SQLite (``IN (SELECT value FROM json_each(%s))``).
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import Lookup


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        values = list(self.rhs)
        prep = self.lhs.output_field.get_prep_value
        return [prep(value) for value in values]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, self.rhs]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*lhs_params, json.dumps(self.rhs)]


def lookups_register() -> None:
    # Integer primary keys and foreign keys (which keep lookups of their own).
    models.IntegerField.register_lookup(AnyOf)
    models.ForeignKey.register_lookup(AnyOf)
