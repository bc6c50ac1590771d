"""Memoized versions of two built-in filters for the lists of past incidents on the
public page: every render shows the same recent incidents again, and formatting their
dates and truncating their summaries was a third of the page's template time.

Both are pure functions of their arguments (and, for dates, of the active language and
of the time zone the value is shown in): the memo holds nothing that can go stale.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from django import template
from django.template import defaultfilters
from django.utils.translation import get_language

register = template.Library()


@register.filter(expects_localtime=True, is_safe=False)
def memo_date(value, arg=None):
    """``|date``, the same output. Like ``|date`` it receives the value already in the
    current time zone ({% timezone %})."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return _day(value, arg, get_language())
    if not isinstance(value, datetime):
        return defaultfilters.date(value, arg)
    # Aware datetimes in different zones are equal when they are the same instant: the
    # key has the wall time, the zone and the fold, which decide the output.
    return _date(value.replace(tzinfo=None), value.tzinfo, value.fold, arg, get_language())


@lru_cache(maxsize=4096)
def _date(wall: datetime, tz, fold: int, arg, language: str | None) -> str:
    return defaultfilters.date(wall.replace(tzinfo=tz, fold=fold), arg)


@register.filter(is_safe=True)
def memo_truncatewords_html(value, arg):
    """``|truncatewords_html``, the same output (safe when the input was: is_safe)."""
    return _truncate(str(value), arg)


@lru_cache(maxsize=1024)
def _day(value: date, arg, language: str | None) -> str:
    return defaultfilters.date(value, arg)


@lru_cache(maxsize=2048)
def _truncate(value: str, arg) -> str:
    return defaultfilters.truncatewords_html(value, arg)


def memo_clear() -> None:
    """Empty the memos (benchmarks measure a cold process with it)."""
    for memoized in (_date, _day, _truncate):
        memoized.cache_clear()
