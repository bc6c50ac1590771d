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
    syncing: bool = False  # a request of this process is adding our count to the shared one now
    sending: int = 0  # what that request is adding


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
            estimate = window.shared + window.sending + window.unsynced + events
            if now < self._cache_down_until:
                window.unsynced += events
                return estimate
            exact = estimate >= limit * EXACT_FROM
            if not exact and (window.syncing or now - window.synced_at < SYNC_SECONDS):
                window.unsynced += events
                return estimate
            window.synced_at = now
            delta, window.unsynced = window.unsynced + events, 0
            if exact:
                # Near the limit every event asks the shared count, one at a time under the
                # lock, so the answer is exact.
                shared = self._shared_count(window, integration_id, delta)
                return self._synced(window, shared, delta, now, estimate)
            window.syncing, window.sending = True, delta
        # The periodic sync, without the lock: a round trip to Redis on a busy machine can
        # take milliseconds, in which this process's other requests keep counting here
        # instead of waiting for the lock (every ingestion thread of the process did).
        shared = self._shared_count(window, integration_id, delta)
        with self._lock:
            window.syncing, window.sending = False, 0
            return self._synced(window, shared, delta, now, estimate)

    def _shared_count(self, window: _Window, integration_id: int, delta: int) -> int | None:
        """The shared count after adding ``delta``; None if the cache cannot be reached."""
        try:
            return _shared_add(window, f"ingest-rate:{integration_id}:{window.number}", delta)
        except Exception:  # noqa: BLE001 - any cache failure: count here, try again later
            log.warning("Rate-limit cache unreachable; counting integration %s in this process only",
                        integration_id, exc_info=True)
            return None

    def _synced(self, window: _Window, shared: int | None, delta: int, now: float, estimate: int) -> int:
        """Under the lock: what a sync learnt, and the count to answer with."""
        if shared is None:
            window.unsynced += delta  # to be added at a later sync
            self._cache_down_until = now + CACHE_RETRY_SECONDS
            return estimate
        window.shared = max(window.shared, shared)  # a later sync's answer may have come first
        return shared


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
