"""counter_next: one UPDATE ... RETURNING per value, the row created on first use."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ircore.counters import counter_next
from ircore.models import Counter

pytestmark = pytest.mark.django_db


def test_values_are_sequential_per_name_from_one():
    assert [counter_next(name="incident") for _ in range(3)] == [1, 2, 3]
    assert counter_next(name="problem") == 1
    assert counter_next(name="incident") == 4
    assert dict(Counter.objects.values_list("name", "value")) == {"incident": 4, "problem": 1}


def test_one_statement_per_value_once_the_row_exists():
    Counter.objects.create(name="incident", value=41)
    with CaptureQueriesContext(connection) as queries:
        assert counter_next(name="incident") == 42
    assert len(queries) == 1 and "RETURNING" in queries[0]["sql"]
