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
from collections.abc import Awaitable, Callable
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
