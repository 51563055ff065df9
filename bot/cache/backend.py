"""The aiocache backend: Redis when REDIS_URL says so, otherwise this process's memory.

Values are stored as JSON on both, so a test on the memory backend says something about Redis too.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiocache import Cache, SimpleMemoryCache
from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer

from bot.redis_url import parse_redis_url

# The in-process cache's entries at most (CACHE_MAX_ENTRIES): each is a small JSON value, so
# this bounds its memory whatever keys the traffic makes (many prefixes searched, many people).
DEFAULT_MAX_ENTRIES = 10_000


class CappedMemoryCache(SimpleMemoryCache):  # type: ignore[misc]
    """aiocache's memory cache with an entry cap: a new key beyond it drops the oldest one
    (insertion order: the one closest to expiring, as every entry here has a TTL)."""

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_entries = max_entries

    async def _set(
        self,
        key: str,
        value: object,
        ttl: float | None = None,
        _cas_token: object = None,
        _conn: object = None,
    ) -> bool | int:
        if key not in self._cache:
            while self._cache and len(self._cache) >= self.max_entries:
                await self._delete(next(iter(self._cache)))  # also cancels its expiry timer
        result: bool | int = await super()._set(key, value, ttl=ttl, _cas_token=_cas_token)
        return result


def build_backend(
    redis_url: str | None,
    *,
    namespace: str = "connect-user-bot",
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> BaseCache:
    """Redis when a URL is given (redis:// or rediss://), otherwise the in-process memory cache
    (at most `max_entries` entries)."""
    if not redis_url:
        # A per-instance namespace keeps two app instances (tests, restarts in one process) from
        # seeing each other.
        return CappedMemoryCache(
            serializer=JsonSerializer(),
            namespace=f"{namespace}:{secrets.token_hex(4)}:",
            max_entries=max_entries,
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
