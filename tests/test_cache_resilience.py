"""ircore.cache.ResilientRedisCache: the Redis cache (REDIS_URL) against a real
redis-server, a closed port, a blackholed port, and a Redis stopped and started again.
While Redis is unreachable each process caches in its own memory; Redis is tried again
at most every RETRY_SECONDS."""

from __future__ import annotations

import logging
import time

import pytest
import redis.exceptions
from django.core.cache import cache, caches

from ircore import cache as resilient
from ircore.testing import unreachable_redis_url
from tests.test_settings import run

BACKEND = "ircore.cache.ResilientRedisCache"
TIMEOUT = 0.3  # socket timeouts for these tests (production: 2 s)


def use_redis(settings, url: str) -> None:
    settings.CACHES = {"default": {"BACKEND": BACKEND, "LOCATION": url,
                                   "OPTIONS": {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT}}}


def raw_redis():
    """redis-py's client on the backend's own connection pool: what Redis really holds."""
    return caches["default"]._cache.get_client(write=True)


def warnings_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "ircore.cache" and r.levelno == logging.WARNING]


@pytest.fixture(autouse=True)
def _fresh(redis_cache_fresh):
    """No test sees another's outage."""


@pytest.mark.external
def test_with_redis_up_every_call_reaches_redis(redis_url, settings, caplog):
    use_redis(settings, redis_url)
    r = raw_redis()
    cache.set("k", {"a": 1}, 60)
    assert r.exists(":1:k") and cache.get("k") == {"a": 1}
    assert cache.add("k", "other") is False
    assert cache.add("n", 1, 60) is True
    assert cache.incr("n", 4) == 5 and int(r.get(":1:n")) == 5
    assert cache.get_many(["k", "n", "missing"]) == {"k": {"a": 1}, "n": 5}
    assert cache.has_key("n") and not cache.has_key("missing")
    cache.set_many({"x": 1, "y": 2}, 60)
    assert r.exists(":1:x", ":1:y") == 2
    assert cache.delete("k") is True and not r.exists(":1:k")
    assert cache.get("k", "default") == "default"
    with pytest.raises(ValueError):  # as Django's RedisCache: incr of a missing key
        cache.incr("missing")
    assert warnings_logged(caplog) == []


@pytest.mark.external
def test_errors_that_are_not_about_reaching_redis_still_raise(redis_url, settings, caplog):
    use_redis(settings, redis_url)
    cache.set("word", "not a number")
    raw_redis().set(":1:word", "abc")
    with pytest.raises(redis.exceptions.ResponseError):
        cache.incr("word")
    assert warnings_logged(caplog) == []
    cache.set("after", 1)
    assert raw_redis().exists(":1:after")  # still talking to Redis, no outage declared


def test_unreachable_redis_reads_miss_and_the_process_caches_alone(settings, caplog):
    use_redis(settings, unreachable_redis_url())
    assert cache.get("k") is None and cache.get("k", "default") == "default"
    assert cache.get_many(["k"]) == {} and cache.has_key("k") is False
    cache.set("k", "kept here", 60)
    assert cache.get("k") == "kept here"
    # add / incr count in the process: what the subscribe rate limit needs.
    assert cache.add("count", 1, 60) is True
    assert cache.add("count", 1, 60) is False
    assert cache.incr("count") == 2
    with pytest.raises(ValueError):
        cache.incr("missing")
    assert cache.delete("k") is True and cache.get("k") is None
    cache.clear()
    assert cache.get("count") is None
    assert len(warnings_logged(caplog)) == 1  # once per outage, not per call
    assert "unreachable" in warnings_logged(caplog)[0]


def test_a_blackholed_redis_is_tried_once_per_retry_window(redis_blackhole, settings, caplog):
    url, attempts = redis_blackhole
    use_redis(settings, url)
    started = time.monotonic()
    assert cache.get("k") is None
    assert time.monotonic() - started >= TIMEOUT * 0.9  # waited for Redis once
    assert attempts() == 1
    started = time.monotonic()
    for i in range(50):
        cache.set(f"k{i}", i)
        assert cache.get(f"k{i}") == i
    assert time.monotonic() - started < TIMEOUT  # 100 calls, no wait for Redis
    assert attempts() == 0
    time.sleep(resilient.RETRY_SECONDS)
    assert cache.get("k0") == 0  # Redis tried again (in vain), the local value served
    assert attempts() == 1
    assert len(warnings_logged(caplog)) == 1


def test_threads_share_the_outage(redis_blackhole, settings, caplog):
    """Django makes a cache instance per thread; the outage is per process."""
    import threading

    url, attempts = redis_blackhole
    use_redis(settings, url)
    cache.set("k", "from the main thread")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(caches["default"].get("k")))
    thread.start()
    thread.join()
    assert seen == ["from the main thread"]
    assert attempts() == 1 and len(warnings_logged(caplog)) == 1


@pytest.mark.external
def test_redis_stopped_and_started_again(redis_server, settings, caplog):
    use_redis(settings, redis_server.url)
    cache.set("before", 1, 60)
    assert raw_redis().exists(":1:before")
    redis_server.stop()

    assert cache.get("before") is None  # down: a miss, no error
    cache.set("during", 2, 60)
    assert cache.get("during") == 2
    assert len(warnings_logged(caplog)) == 1

    redis_server.start()
    time.sleep(resilient.RETRY_SECONDS)
    cache.set("after", 3, 60)
    assert raw_redis().exists(":1:after")  # back on Redis
    assert cache.get("during") is None  # the process's outage cache is dropped
    assert any("reachable again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert len(warnings_logged(caplog)) == 1

    redis_server.stop()  # a second outage warns again
    assert cache.get("after") is None
    assert len(warnings_logged(caplog)) == 2


def test_settings_use_the_resilient_backend_with_redis_url(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings; "
            "c = settings.CACHES['default']; "
            "print(c['BACKEND'], c['LOCATION'], c['OPTIONS']['socket_timeout'])")
    result = run(code, tmp_path, SECRET_KEY="k" * 60, REDIS_URL="redis://127.0.0.1:6399/2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [BACKEND, "redis://127.0.0.1:6399/2", "2"]
