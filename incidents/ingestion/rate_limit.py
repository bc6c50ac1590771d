"""Per-integration rate limits: fixed one-minute windows counted in events.

The count is shared by every web process through Django's cache (Redis in production;
per-process memory in the embedded default). Asking the cache on every event would
cost each ingestion request one to three round trips to Redis, about as much CPU as
the request's own durable INSERT (measured: 1.8 ms of CPU per event instead of 0.9
with Redis). So each process counts locally and adds its count to the shared one at
most every ``SYNC_SECONDS`` per integration, and on every event once its estimate is
near the limit, where the answer must be exact. What another process counted in its
last ``SYNC_SECONDS`` can therefore reach the shared count late: with several busy
processes a window may overshoot by that much before the 429s start.

If the shared cache cannot be reached (Redis down), the limit is kept per process and
a warning is logged: a rate limit must not stop incidents from being recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# How stale the shared count may be in this process (per integration).
SYNC_SECONDS = 0.1
# From this share of the limit on, every event asks the shared count.
EXACT_FROM = 0.9
# After a failed attempt to reach the shared cache, count in this process this long.
CACHE_RETRY_SECONDS = 1.0


@dataclass
class _Window:
    number: int  # minutes since the epoch
    shared: int = 0  # the shared count at the last sync (ours included)
    unsynced: int = 0  # counted here since then
    synced_at: float = 0.0  # time.monotonic() of the last sync
    known: bool = False  # the shared key exists (this process added or saw it)


class WindowLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[int, _Window] = {}
        self._cache_down_until = 0.0

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
            self._cache_down_until = 0.0

    def count(self, integration_id: int, events: int, limit: int) -> int:
        """Add ``events`` to the integration's current window; return the window's
        count (to compare with ``limit``), exact near the limit."""
        number = int(time.time() // WINDOW_SECONDS)
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(integration_id)
            if window is None or window.number != number:
                window = self._windows[integration_id] = _Window(number)
            estimate = window.shared + window.unsynced + events
            recent = now - window.synced_at < SYNC_SECONDS and estimate < limit * EXACT_FROM
            if recent or now < self._cache_down_until:
                window.unsynced += events
                return estimate
            window.synced_at = now
            delta = window.unsynced + events
            try:
                window.shared = _shared_add(window, f"ingest-rate:{integration_id}:{number}", delta)
            except Exception:  # noqa: BLE001 - any cache failure: count here, try again later
                log.warning("Rate-limit cache unreachable; counting integration %s in this process only",
                            integration_id, exc_info=True)
                window.unsynced = delta
                self._cache_down_until = now + CACHE_RETRY_SECONDS
                return estimate
            window.unsynced = 0
            return window.shared


def _shared_add(window: _Window, key: str, delta: int) -> int:
    # A little longer than the window, so a late sync still finds its key.
    timeout = WINDOW_SECONDS + 10
    if not window.known:
        window.known = True
        if cache.add(key, delta, timeout=timeout):
            return delta
    try:
        return cache.incr(key, delta)
    except ValueError:  # expired, or the cache was cleared
        cache.set(key, delta, timeout=timeout)
        return delta


ingest_limiter = WindowLimiter()
