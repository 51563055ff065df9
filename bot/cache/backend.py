"""The aiocache backend: Redis when REDIS_URL says so, otherwise this process's memory.

Values are stored as JSON on both, so a test on the memory backend says something about Redis too.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiocache import Cache
from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer

from bot.redis_url import parse_redis_url


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
