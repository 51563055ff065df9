"""Failures a test injects into the fake Slack: Slack errors (``{"ok": false}``), HTTP 429 with
Retry-After and 5xx, answers delayed by a latency, and handlers that replace a method's answer."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any]]"]


@dataclass
class _Fault:
    error: str
    status: int
    remaining: int | None  # None: until clear_faults()
    retry_after: int | None


class Faults:
    """Injected failures and delays (``latency``: see FakeSlack). Part of FakeSlack (server.py),
    whose lock guards the queues."""

    _lock: threading.RLock

    def _init_faults(self) -> None:
        self.latency: dict[str, float] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._handlers: dict[str, Handler] = {}

    def _reset_faults(self) -> None:
        """Forget faults, handlers and latency (under the lock)."""
        self._faults.clear()
        self._handlers.clear()
        self.latency.clear()

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        times: int | None = 1,
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail (``times=None``: until cleared).

        ``status=429`` answers HTTP 429 with ``Retry-After`` (default 1) and ``ratelimited``;
        ``status=5xx`` answers that status with ``internal_error``; ``status=200`` with ``error``
        answers Slack's API-level ``{"ok": false, "error": error}``. Faults queue in order.
        """
        if error is None:
            error = {429: "ratelimited"}.get(status, "internal_error" if status >= 500 else None)
            if error is None:
                error = "fatal_error"
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.setdefault(method, []).append(
                _Fault(error=error, status=status, remaining=times, retry_after=retry_after)
            )

    def clear_faults(self, method: str | None = None) -> None:
        with self._lock:
            if method is None:
                self._faults.clear()
            else:
                self._faults.pop(method, None)

    def set_handler(self, method: str, fn: Handler | None) -> None:
        """Answer ``method`` with ``fn(args)`` (sync or async, returns the JSON dict), skipping the
        fake's defaults and validation. ``None`` removes the override."""
        with self._lock:
            if fn is None:
                self._handlers.pop(method, None)
            else:
                self._handlers[method] = fn

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay answers to ``method`` (``"*"`` for all methods)."""
        self.latency[method] = seconds

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
        return fault
