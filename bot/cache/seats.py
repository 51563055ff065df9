"""Licence seats shared between replicas: the `Seats` port with its answer cached briefly.

A seat count grants nothing (it only informs an approver), so it may come from Redis. Refusals
and failures are not kept here: the adapter remembers a key that may not read seats itself.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.cache.keyed import KeyedCache, cache_key
from bot.workflow.models import Account, SeatCount
from bot.workflow.ports import Seats

# Seats change when people log in for the first time or are locked: a minute old is fresh enough
# for a card, and a burst of cards makes one reading.
SEATS_CACHE_TTL = 60.0


class CachedSeats:
    """`bot.workflow.ports.Seats`, answered from the cache for `ttl` seconds (0: not cached)."""

    def __init__(
        self, seats: Seats, cache: KeyedCache, *, scope: str, ttl: float = SEATS_CACHE_TTL
    ) -> None:
        self.inner = seats
        self.cache = cache
        self.ttl = ttl
        # The Connect server (and key) the counts come from: part of the key.
        self.scope = scope

    async def seats(self) -> SeatCount:
        return await self.cache.get_or_compute(
            "seats:" + cache_key(self.scope),
            self.inner.seats,
            ttl=self.ttl,
            dump=dump_seats,
            load=load_seats,
        )

    async def idle_accounts(self, *, idle_since: datetime) -> list[Account]:
        # An approver asks, and may lock one next: always read now.
        return await self.inner.idle_accounts(idle_since=idle_since)


def dump_seats(seats: SeatCount) -> dict[str, Any]:
    return asdict(seats)


def load_seats(stored: Any) -> SeatCount:
    """A cached count back; anything malformed raises (the cache then asks Connect)."""

    def count(name: str, *, optional: bool = False) -> Any:
        value = stored[name]
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"a cached seat count with a bad {name}")
        return value

    return SeatCount(
        in_use=count("in_use"),
        limit=count("limit", optional=True),
        inactive=count("inactive"),
        locked=count("locked"),
        activity_days=count("activity_days", optional=True),
    )
