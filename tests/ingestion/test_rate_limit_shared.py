"""The ingestion rate limit across web processes: each process counts locally and
adds to the shared count (Django's cache) at most every SYNC_SECONDS, and on every
event once it is near the limit. Two ``WindowLimiter`` instances stand for two
processes sharing one cache."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache, caches

from incidents.ingestion import rate_limit
from incidents.ingestion.rate_limit import WindowLimiter

AT = dt.datetime(2026, 3, 2, 10, 0, 5, tzinfo=dt.UTC)
KEY = f"ingest-rate:7:{int(AT.timestamp() // 60)}"


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock(monkeypatch):
    """time.monotonic as the limiter sees it, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(rate_limit.time, "monotonic", lambda: now[0])
    return now


def test_counts_in_the_process_between_syncs(clock):
    limiter = WindowLimiter()
    with time_machine.travel(AT, tick=False):
        assert limiter.count(7, 1, 1000) == 1  # the first event of a window asks the cache
        assert cache.get(KEY) == 1
        for expected in range(2, 7):
            assert limiter.count(7, 1, 1000) == expected
        assert cache.get(KEY) == 1  # not told yet
        clock[0] += rate_limit.SYNC_SECONDS
        assert limiter.count(7, 3, 1000) == 9
        assert cache.get(KEY) == 9  # the five counted here, plus these three


def test_near_the_limit_every_event_asks_the_shared_count(clock):
    a, b = WindowLimiter(), WindowLimiter()
    with time_machine.travel(AT, tick=False):
        counts = [a.count(7, 1, 10) for _ in range(9)]
        assert counts == list(range(1, 10))
        # From 90 % of the limit on, process a synced: the shared count is exact.
        assert cache.get(KEY) == 9
        assert b.count(7, 1, 10) == 10  # b's first event: 10 of 10, accepted
        assert b.count(7, 1, 10) == 11  # over the limit
        assert a.count(7, 1, 10) == 12  # a learns of b's events at once
        assert cache.get(KEY) == 12


def test_a_process_learns_the_others_count_at_its_next_sync(clock):
    a, b = WindowLimiter(), WindowLimiter()
    with time_machine.travel(AT, tick=False):
        a.count(7, 1, 1000)
        for _ in range(50):
            b.count(7, 1, 1000)
        clock[0] += rate_limit.SYNC_SECONDS
        assert b.count(7, 1, 1000) == 52  # b pushes its 50 + 1
        assert a.count(7, 1, 1000) == 53  # a has not synced for SYNC_SECONDS either


def test_a_new_minute_is_a_new_window(clock):
    limiter = WindowLimiter()
    with time_machine.travel(AT, tick=False):
        for _ in range(5):
            limiter.count(7, 2, 1000)
    with time_machine.travel(AT + dt.timedelta(minutes=1), tick=False):
        assert limiter.count(7, 2, 1000) == 2


def test_integrations_are_counted_apart(clock):
    limiter = WindowLimiter()
    with time_machine.travel(AT, tick=False):
        limiter.count(7, 5, 100)
        assert limiter.count(8, 1, 100) == 1


def test_a_cleared_cache_starts_the_shared_count_again(clock):
    limiter = WindowLimiter()
    with time_machine.travel(AT, tick=False):
        limiter.count(7, 4, 1000)
        cache.clear()
        clock[0] += rate_limit.SYNC_SECONDS
        assert limiter.count(7, 1, 1000) == 1


@pytest.mark.external
def test_with_redis_a_busy_process_asks_redis_a_few_times_a_second(redis_url, settings, clock):
    """Before the local count, every event cost one to three Redis commands."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": redis_url}}
    redis = caches["default"]._cache.get_client(write=True)
    a, b = WindowLimiter(), WindowLimiter()
    with time_machine.travel(AT, tick=False):
        before = sum(v["calls"] for v in redis.info("commandstats").values())
        for _ in range(10):  # one second of 200 events per 0.1 s, in two processes
            for _event in range(100):
                a.count(7, 1, 100_000)
                b.count(7, 1, 100_000)
            clock[0] += rate_limit.SYNC_SECONDS
        commands = sum(v["calls"] for v in redis.info("commandstats").values()) - before - 1
        a.count(7, 0, 100_000)
        assert b.count(7, 0, 100_000) == 2000  # every event reached the shared count
        assert int(redis.get(f":1:{KEY}")) == 2000
    assert commands <= 2 * 10 * 2 + 2, commands  # <= 2 commands per sync, 10 syncs per process


class _UnreachableCache:
    def __init__(self):
        self.calls = 0

    def _fail(self, *args, **kwargs):
        self.calls += 1
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    add = incr = set = _fail


def test_an_unreachable_cache_leaves_the_count_to_each_process(clock, monkeypatch, caplog):
    down = _UnreachableCache()
    monkeypatch.setattr(rate_limit, "cache", down)
    limiter = WindowLimiter()
    with time_machine.travel(AT, tick=False):
        assert [limiter.count(7, 1, 10) for _ in range(12)] == list(range(1, 13))  # 11 and 12: 429
        assert down.calls == 1  # not asked again on every event near the limit
        assert "counting integration 7 in this process only" in caplog.text
        clock[0] += rate_limit.CACHE_RETRY_SECONDS
        monkeypatch.setattr(rate_limit, "cache", cache)  # back
        assert limiter.count(7, 1, 10) == 13  # what was counted meanwhile reaches the shared count
        assert cache.get(KEY) == 13


@pytest.mark.django_db
def test_ingestion_goes_on_when_redis_is_down(client, settings, service_a, make_integration):
    """REDIS_URL set, Redis not running: the event is still stored and answered 202."""
    import json
    import socket

    from incidents.models import QueuedEvent

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{port}/0",
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
    rate_limit.ingest_limiter.clear()
    integration = make_integration(service_a, "pagerduty")
    body = {"routing_key": integration.token, "event_action": "trigger",
            "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"}}
    r = client.post("/integrations/pagerduty/v2/enqueue", json.dumps(body), content_type="application/json")
    assert r.status_code == 202, r.content
    assert QueuedEvent.objects.count() + integration.alerts.count() == 1
    rate_limit.ingest_limiter.clear()


class _SlowCache:
    """The locmem cache, whose writes wait until the test lets them through: a Redis
    round trip on a busy machine."""

    def __init__(self):
        import threading

        self.entered = threading.Event()
        self.go_on = threading.Event()
        self.calls = 0

    def _slow(self, name):
        def call(*args, **kwargs):
            self.calls += 1
            self.entered.set()
            assert self.go_on.wait(10)
            return getattr(cache, name)(*args, **kwargs)
        return call

    def __getattr__(self, name):
        return self._slow(name)


def test_a_periodic_sync_does_not_hold_up_the_process_other_requests(clock, monkeypatch):
    """While one request adds the process's count to the shared one, the others count
    here and answer at once, and do not start a second sync."""
    import threading

    slow = _SlowCache()
    monkeypatch.setattr(rate_limit, "cache", slow)
    limiter = WindowLimiter()
    with time_machine.travel(AT, tick=False):
        syncing = threading.Thread(target=limiter.count, args=(7, 1, 1000))
        syncing.start()
        assert slow.entered.wait(10)
        clock[0] += rate_limit.SYNC_SECONDS  # a sync would be due, but one is on its way
        answers = [limiter.count(7, 1, 1000) for _ in range(5)]  # would block behind it before
        assert answers == [2, 3, 4, 5, 6]
        assert slow.calls == 1
        slow.go_on.set()
        syncing.join(10)
        assert not syncing.is_alive()
        assert cache.get(KEY) == 1
        assert limiter.count(7, 1, 1000) == 7  # the next sync adds what was counted meanwhile
        assert cache.get(KEY) == 7
