"""The cache's own rules, in memory: keys made from values, one computation for concurrent
misses, failures never kept, and answers with a maximum age that events invalidate. On Redis,
shared by replicas: tests/e2e/test_cache_on_redis.py."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiocache.backends.redis import RedisBackend

from bot.cache.backend import build_backend
from bot.cache.keyed import KeyedCache, cache_key


def test_keys_come_from_values_not_reprs() -> None:
    assert cache_key("julie", 50) == cache_key("julie", 50)
    assert cache_key("julie", 50) != cache_key("julie", 51)
    assert len(cache_key("x" * 10_000)) == 40


def test_rediss_url_is_built_from_its_parts() -> None:
    backend = build_backend("rediss://bot-user:s3cret@cache.example.com:6380/2", namespace="n")
    assert isinstance(backend, RedisBackend)
    assert (backend.endpoint, backend.port, backend.db) == ("cache.example.com", 6380, 2)
    assert backend.password == "s3cret"
    kwargs = backend.client.connection_pool.connection_kwargs
    assert kwargs["username"] == "bot-user"
    assert backend.client.connection_pool.connection_class.__name__ == "SSLConnection"


async def test_concurrent_misses_compute_once_in_memory() -> None:
    cache = KeyedCache(build_backend(None))
    calls = 0

    async def compute() -> dict:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"value": 1}

    results = await asyncio.gather(*[cache.get_or_compute("k", compute, ttl=10) for _ in range(50)])
    assert calls == 1 and all(result == {"value": 1} for result in results)
    assert await cache.get_or_compute("k", compute, ttl=10) == {"value": 1}
    assert calls == 1


async def test_a_failed_computation_is_not_cached() -> None:
    cache = KeyedCache(build_backend(None))

    async def fail() -> dict:
        raise RuntimeError("connect down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get_or_compute("k", fail, ttl=10)

    async def succeed() -> dict:
        return {"ok": True}

    assert await cache.get_or_compute("k", succeed, ttl=10) == {"ok": True}


async def test_fresh_answers_have_a_maximum_age_and_are_invalidated() -> None:
    from bot.cache.fresh import FreshAnswers

    now = [0.0]
    answers = FreshAnswers(clock=lambda: now[0])
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    # One look-up in flight per key, however many ask.
    assert set(await asyncio.gather(*[answers.get("k", fetch, max_age=5) for _ in range(20)])) == {
        1
    }
    now[0] = 5.0
    assert await answers.get("k", fetch, max_age=5) == 1
    assert await answers.get("k", fetch, max_age=4) == 2, "older than this reader accepts"
    answers.invalidate("k")
    assert await answers.get("k", fetch, max_age=60) == 3

    # An invalidation during a look-up: its answer may predate the change, so it is not kept.
    slow = asyncio.ensure_future(answers.get("k2", fetch, max_age=60))
    await asyncio.sleep(0)
    answers.invalidate("k2")
    assert await slow == 4
    assert await answers.get("k2", fetch, max_age=60) == 5

    async def fail() -> int:
        raise RuntimeError("slack down")

    with pytest.raises(RuntimeError):
        await answers.get("k3", fail, max_age=60)
    assert await answers.get("k3", fetch, max_age=60) == 6, "a failure is never kept"


def test_cached_search_pages_keep_roles_and_locks_but_no_tickets() -> None:
    from bot.cache.directory import dump_page, load_page
    from bot.workflow.models import DirectoryEntry, DirectoryPage

    page = DirectoryPage(
        entries=(
            DirectoryEntry("julie1", guid="g-1", user_role="publisher", locked=True),
            DirectoryEntry("julie2", temp_ticket="ticket-not-cached"),
        ),
        total=2,
    )
    stored = dump_page(page)
    assert "ticket-not-cached" not in json.dumps(stored)
    loaded = load_page(json.loads(json.dumps(stored)))
    assert loaded.entries[0] == page.entries[0]
    assert loaded.entries[1].temp_ticket == "" and not loaded.entries[1].locked


async def test_the_in_process_cache_keeps_at_most_its_cap() -> None:
    """Without Redis the cache lives in the bot's memory: however many keys traffic makes, it
    holds at most CACHE_MAX_ENTRIES, dropping the oldest (and its expiry timer) first."""
    from bot.cache.backend import CappedMemoryCache, build_backend

    cache = build_backend(None, max_entries=3)
    assert isinstance(cache, CappedMemoryCache)
    for n in range(10):
        await cache.set(f"k{n}", {"n": n}, ttl=60)
    assert len(cache._cache) == 3 and len(cache._handlers) == 3
    assert await cache.get("k0") is None
    assert [await cache.get(f"k{n}") for n in (7, 8, 9)] == [{"n": 7}, {"n": 8}, {"n": 9}]
    # Setting a key it holds replaces it without dropping another.
    await cache.set("k9", {"n": 99}, ttl=60)
    assert await cache.get("k7") == {"n": 7} and await cache.get("k9") == {"n": 99}
