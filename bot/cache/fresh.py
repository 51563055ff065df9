"""Answers that grant rights, kept in this process only, each read with a maximum age."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


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
            return cast(T, entry[1])
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
