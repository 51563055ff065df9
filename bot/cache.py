"""aiocache set-up, explicit keys, and single-flight.

aiocache 0.12 keys `@cached` methods on the object's repr (different per process) and does not
de-duplicate concurrent misses, so the bot builds its own keys from the values that matter and
collapses concurrent identical look-ups into one call. Values are stored as JSON on both backends so
a test on the memory backend says something about Redis too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from aiocache import Cache
from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer

from bot.redis_url import parse_redis_url

log = logging.getLogger(__name__)

T = TypeVar("T")


def cache_key(*parts: str | int | float | None) -> str:
    """A stable key from the values that matter; long or odd values are hashed, not embedded."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def build_backend(redis_url: str | None, *, namespace: str = "connect-user-bot") -> BaseCache:
    """Redis when a URL is given (redis:// or rediss://), otherwise the in-process memory cache."""
    if not redis_url:
        # The memory backend's dict is shared by every instance in a process: a per-instance
        # namespace keeps two app instances (tests, restarts in one process) from seeing each other.
        return Cache(
            Cache.MEMORY,
            serializer=JsonSerializer(),
            namespace=f"{namespace}:{secrets.token_hex(4)}:",
        )
    # Built from parts: Cache.from_url rejects rediss:// and drops the username. Settings has
    # already refused a malformed URL; parsing it the same way here keeps the two from drifting.
    address = parse_redis_url(redis_url)
    pool_kwargs: dict[str, Any] = {}
    if address.username:
        pool_kwargs["username"] = address.username
    return Cache(
        Cache.REDIS,
        endpoint=address.host,
        port=address.port,
        db=address.db,
        password=address.password,
        ssl=address.ssl,
        create_connection_timeout=3,
        connection_pool_kwargs=pool_kwargs,
        serializer=JsonSerializer(),
        namespace=f"{namespace}:",
        timeout=3,
    )


class KeyedCache:
    """get-or-compute over an aiocache backend, with one in-flight computation per key."""

    def __init__(self, backend: BaseCache) -> None:
        self.backend = backend
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    async def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        *,
        ttl: float,
        dump: Callable[[T], Any] = lambda value: value,
        load: Callable[[Any], T] = lambda value: value,
    ) -> T:
        if ttl <= 0:
            return await compute()
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._lookup_or_compute(key, compute, ttl=ttl, dump=dump, load=load)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            # Waiters re-raise it; nobody else needs to retrieve it.
            future.exception()
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._inflight.pop(key, None)

    async def _lookup_or_compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        *,
        ttl: float,
        dump: Callable[[T], Any],
        load: Callable[[Any], T],
    ) -> T:
        try:
            stored = await self.backend.get(key)
        except Exception as exc:  # a cache outage must not become a bot outage
            log.warning("cache read failed, computing instead: %s", type(exc).__name__)
            stored = None
        if stored is not None:
            try:
                return load(stored)
            except Exception:
                log.warning("cache entry %s did not load; recomputing", key[:12])
        value = await compute()
        try:
            await self.backend.set(key, dump(value), ttl=ttl)
        except Exception as exc:
            log.warning("cache write failed: %s", type(exc).__name__)
        return value

    async def delete(self, key: str) -> None:
        try:
            await self.backend.delete(key)
        except Exception as exc:
            log.warning("cache delete failed: %s", type(exc).__name__)

    async def close(self) -> None:
        try:
            await self.backend.close()
        except Exception as exc:
            log.debug("cache close failed: %s", type(exc).__name__)


class FreshAnswers:
    """In-process answers read with a maximum age, one look-up in flight per key, and early
    invalidation.

    For answers that grant rights (who may approve): they are never shared through Redis, where
    anyone who can write could grant themselves a role. Each read says how old an answer it
    accepts, so one entry serves a decision (seconds) and a search (a minute). The age of an
    answer counts from the moment it was asked for; a failure is never kept. An invalidation
    also detaches a look-up already in flight: its answer may predate the change, so it serves
    only the callers already waiting for it and is not kept.
    """

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}
        self._max_entries = max_entries
        self._clock = clock

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[T]], *, max_age: float) -> T:
        entry = self._entries.get(key)
        if entry is not None and self._clock() - entry[0] <= max_age:
            self._entries.move_to_end(key)
            return entry[1]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._look_up(key, fetch))
            # A look-up whose callers all went away must not warn "exception never retrieved".
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _look_up(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        asked_at = self._clock()
        me = asyncio.current_task()
        try:
            value = await fetch()
        finally:
            detached = self._inflight.get(key) is not me
            if not detached:
                del self._inflight[key]
        if not detached:
            self._entries[key] = (asked_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value

    def invalidate(self, key: Hashable) -> None:
        self._entries.pop(key, None)
        self._inflight.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
        self._inflight.clear()
