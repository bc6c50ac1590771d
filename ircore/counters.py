"""Named, gap-free sequences (INC-<n>, PRB-<n>) shared by every app."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from ircore.models import Counter


def counter_next(*, name: str) -> int:
    """The next value of sequence ``name``; call inside the transaction that uses it.

    The UPDATE takes the row lock until commit, so two writers can never read the same
    value; on SQLite the IMMEDIATE transaction already serializes writers."""
    updated = Counter.objects.filter(name=name).update(value=F("value") + 1)
    if not updated:
        try:
            with transaction.atomic():
                Counter.objects.create(name=name, value=1)
                return 1
        except IntegrityError:
            Counter.objects.filter(name=name).update(value=F("value") + 1)
    return Counter.objects.values_list("value", flat=True).get(name=name)
