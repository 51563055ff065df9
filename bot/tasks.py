"""Supervised background work: what listeners do after `ack()`.

Bolt answers Slack as soon as `ack()` is called; the rest of the work must neither vanish silently
on an exception nor be cut off by a deploy. Every such task is tracked here: failures are logged
and reported through the task's own `on_error`, and shutdown waits (bounded) for the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

ErrorReporter = Callable[[BaseException], Awaitable[None]]


class TaskSupervisor:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def spawn(
        self,
        work: Coroutine[Any, Any, Any],
        *,
        name: str,
        on_error: ErrorReporter | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(self._guard(work, name, on_error), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(
        self, work: Coroutine[Any, Any, Any], name: str, on_error: ErrorReporter | None
    ) -> None:
        try:
            await work
        except asyncio.CancelledError:
            log.warning("task %s was cancelled at shutdown", name)
            raise
        except Exception as exc:
            log.exception("task %s failed", name)
            if on_error is not None:
                try:
                    await on_error(exc)
                except Exception:
                    log.exception("task %s: reporting the failure failed too", name)

    async def drain(self, grace_seconds: float) -> int:
        """Wait up to `grace_seconds` for in-flight work; cancel what is left. Returns how many
        tasks had to be cancelled."""
        pending = set(self._tasks)
        if not pending:
            return 0
        log.info("waiting up to %.0fs for %d task(s) in flight", grace_seconds, len(pending))
        _, still_running = await asyncio.wait(pending, timeout=grace_seconds)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=1)
        return len(still_running)

    async def join(self) -> None:
        """Wait for everything in flight (tests use this to make background work observable)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
