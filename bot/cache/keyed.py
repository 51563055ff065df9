"""Get-or-compute over the shared cache, with explicit keys and one computation per key.

aiocache 0.12 keys `@cached` methods on the object's repr (different per process) and does not
de-duplicate concurrent misses, so the bot builds its own keys from the values that matter and
collapses concurrent identical look-ups into one call. A cache outage degrades to uncached calls,
never to errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiocache.base import BaseCache

from bot.workflow.ports import NO_METRICS, Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")


def cache_key(*parts: str | int | float | None) -> str:
    """A stable key from the values that matter; long or odd values are hashed, not embedded."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def cache_name(key: str) -> str:
    """What a key is for, as its prefix names it (`search:…` → `search`); "other" without one.
    Keys end in a hash of their values, so the prefix is the only readable part."""
    name, colon, _ = key.partition(":")
    return name if colon and name.replace("-", "").replace("_", "").isalnum() else "other"


class KeyedCache:
    """get-or-compute over an aiocache backend, with one in-flight computation per key."""

    def __init__(self, backend: BaseCache, *, metrics: Metrics = NO_METRICS) -> None:
        self.backend = backend
        self.metrics = metrics
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
            self.metrics.cache_lookup(cache_name(key), "shared")
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
                value = load(stored)
            except Exception:
                log.warning("cache entry %s did not load; recomputing", key[:12])
            else:
                self.metrics.cache_lookup(cache_name(key), "hit")
                return value
        self.metrics.cache_lookup(cache_name(key), "miss")
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
