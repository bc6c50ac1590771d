"""The Redis cache backend (settings.CACHES when REDIS_URL is set), made to degrade
instead of raising when Redis cannot be reached.

Why: every cache user here is an optimisation or a best-effort limit (status page
renders and page rows, the subscribe rate limit, the export-pending flag). Django's
RedisCache raises on every call while Redis is down, which turned those into 500s: the
public status page went down exactly during an outage, and status page invalidation
failed the admin/API edits (and incident changes) whose transactions it runs in.

While Redis is unreachable, each process uses its own in-memory cache (a LocMemCache,
as an install without REDIS_URL does): reads miss unless this process wrote the key
during the outage, writes and deletes stay in the process, and add/incr count per
process, so the subscribe rate limit still limits each process instead of failing open.
What the callers already accept from the local-memory setup (pages rendered per
process, the page row cached ~2 s per process) is all that changes.

A circuit breaker keeps a dead or blackholed Redis from costing every call its socket
timeout: after a failure, calls go to the local cache for RETRY_SECONDS, then one call
tries Redis again. The local cache is emptied when Redis answers again, so nothing a
process kept during one outage is read back in the next.

Only connection-level errors degrade; anything else (a bad argument, a value that does
not pickle, incr on a non-integer) still raises, as it would on a healthy Redis.
"""

from __future__ import annotations

import logging
import threading

import redis.exceptions
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from ircore.breaker import Breaker

log = logging.getLogger(__name__)

# How long to leave Redis alone after a failed call (a blackholed Redis costs the
# socket timeout per attempt; one attempt per second per process is little).
RETRY_SECONDS = 1.0
# Bounded memory for what a process keeps while Redis is down (LocMemCache culls).
FALLBACK_MAX_ENTRIES = 1000
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class _Breaker(Breaker):
    """Reachability of one Redis and the local cache used meanwhile. One per process
    and location: Django makes a cache instance per thread, and the threads of a
    process must share the outage (one warning, one retry per RETRY_SECONDS)."""

    def __init__(self, name: str, params: dict) -> None:
        super().__init__(
            retry_seconds=RETRY_SECONDS,
            log=log,
            down_message=f"Redis cache unreachable (%s): caching in this process only, "
                         f"retrying every {RETRY_SECONDS:.0f} s",
            up_message="Redis cache reachable again: shared cache in use",
        )
        self.fallback = LocMemCache(name, {**params, "OPTIONS": {"MAX_ENTRIES": FALLBACK_MAX_ENTRIES}})


_breakers: dict[tuple, _Breaker] = {}
_breakers_lock = threading.Lock()


class ResilientRedisCache(RedisCache):
    """RedisCache that falls back to a per-process LocMemCache while Redis is unreachable."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        ident = (tuple(self._servers), self.key_prefix, self.version)
        with _breakers_lock:
            if ident not in _breakers:
                _breakers[ident] = _Breaker(f"ircore.cache.fallback:{ident}", params)
            self._breaker = _breakers[ident]

    def _call(self, method: str, *args, **kwargs):
        breaker = self._breaker
        if breaker.allowed():
            try:
                result = getattr(super(), method)(*args, **kwargs)
            except UNREACHABLE as exc:
                breaker.failed(exc)
            else:
                if breaker.answered():
                    # Nothing kept during this outage may be read back in the next one.
                    breaker.fallback.clear()
                return result
        return getattr(breaker.fallback, method)(*args, **kwargs)

    # Every method that reaches Redis; the rest of BaseCache (get_or_set, decr, the
    # async variants, incr_version...) is built on these.
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout, version=version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default, version=version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout, version=version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", key, timeout, version=version)

    def delete(self, key, version=None):
        return self._call("delete", key, version=version)

    def get_many(self, keys, version=None):
        return self._call("get_many", keys, version=version)

    def has_key(self, key, version=None):
        return self._call("has_key", key, version=version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", key, delta, version=version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", data, timeout, version=version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", keys, version=version)

    def clear(self):
        return self._call("clear")
