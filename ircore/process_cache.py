"""A per-process cache with a time-to-live, for what a hot path reads on every request
and rarely changes: ingestion's integrations by token, a team's triage rules.

Saving the source clears the process's entries at once (``clear`` is a signal receiver);
other processes see the change within the time-to-live. The cache is bounded: past
``max_entries`` it starts again, so keys only real objects reach cannot grow it forever.
A dict's get and set are atomic under the interpreter lock, so threads share it freely.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class ProcessCache(Generic[V]):
    def __init__(self, seconds: float, *, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[V, float]] = {}

    def get(self, key: Hashable) -> V | None:
        """The value cached under ``key`` if it has not expired, else None."""
        entry = self._entries.get(key)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        return None

    def put(self, key: Hashable, value: V) -> V:
        if len(self._entries) > self.max_entries:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + self.seconds)
        return value

    def discard(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self, **_: Any) -> None:
        self._entries.clear()
