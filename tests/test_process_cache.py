"""ircore.process_cache.ProcessCache: values expire after the time-to-live, the cache
starts again past its bound, and ``clear`` works as a signal receiver."""

from __future__ import annotations

import types

from ircore import process_cache
from ircore.process_cache import ProcessCache


def test_values_expire_and_the_cache_is_bounded(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(process_cache, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    cache: ProcessCache[str] = ProcessCache(5.0, max_entries=2)
    assert cache.get("a") is None
    assert cache.put("a", "A") == "A"
    now[0] += 4.9
    assert cache.get("a") == "A"
    now[0] += 0.2
    assert cache.get("a") is None  # expired
    cache.put("a", "A")
    cache.put("b", "B")
    cache.put("c", "C")  # 2 entries: not past the bound yet
    assert [cache.get(k) for k in "abc"] == ["A", "B", "C"]
    cache.put("d", "D")  # past it: starts again
    assert [cache.get(k) for k in "abcd"] == [None, None, None, "D"]
    cache.discard("d")
    cache.discard("missing")
    assert cache.get("d") is None
    cache.put("e", "E")
    cache.clear(sender=object, instance=None, created=False)  # as post_save calls it
    assert cache.get("e") is None
