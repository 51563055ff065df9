"""Prometheus metrics: the `bot.workflow.ports.Metrics` port, counted into a registry of its own.

Each app owns its registry (never prometheus_client's global one), so every replica serves its
own numbers and two apps in one process (tests) never share or collide. Labels hold bounded names
only (kinds, outcomes, endpoint templates, Slack methods and error codes), never a person's data.

The outbox's depth and the age of its oldest message are read from the store when scraped (one
aggregate query with a time limit), not kept up to date on every delivery.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.workflow.clock import Clock, utcnow
from bot.workflow.models import OutboxKind

log = logging.getLogger(__name__)

PREFIX = "connect_user_bot"
# A scrape waits this long for the outbox's numbers, then serves the rest with the last ones.
BACKLOG_READ_SECONDS = 2.0

# The outbox's undelivered messages: how many, and when the oldest was written (None: none).
OutboxBacklog = tuple[int, datetime | None]

# What a label may hold when it comes from outside (a Slack method or error code, a name):
# anything else is counted as "other", so an odd value can never carry data into a label.
# (Matched whole: `$` alone would let a trailing newline through.)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_SAFE_TEMPLATE = re.compile(r"(/(\{guid\}|[a-z][a-z0-9_]{0,31}))+")
# Connect's error codes are small numbers; the body could hold any integer, so a label gets one
# of at most 10,000 values.
_CONNECT_CODE = re.compile(r"[0-9]{1,4}")
_OUTBOX_KINDS = frozenset(kind.value for kind in OutboxKind)
_GUID = re.compile(
    r"(?<=/)[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?=/|$)"
)

# Seconds, from a quick decision to the longest a request may wait (expiry is at most a year).
_DECISION_BUCKETS = (
    60,
    300,
    900,
    3600,
    4 * 3600,
    12 * 3600,
    86400,
    3 * 86400,
    7 * 86400,
    30 * 86400,
)
_CONNECT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def safe_label(value: str) -> str:
    return value if _SAFE_NAME.fullmatch(value) else "other"


def connect_code_label(code: str) -> str:
    """Connect's error code as a label: "" when there is none, "other" when it is not 1-4
    digits."""
    if not code:
        return ""
    return code if _CONNECT_CODE.fullmatch(code) else "other"


def endpoint_template(path: str) -> str:
    """`v1/users/{guid}` → `/v1/users/{guid}`. The client names its paths by template already;
    should a real GUID slip through anyway it becomes `{guid}`, and any other odd shape "other"."""
    path = "/" + path.split("?", 1)[0].lstrip("/")
    path = _GUID.sub("{guid}", path)
    return path if _SAFE_TEMPLATE.fullmatch(path) else "other"


class PrometheusMetrics:
    """The Metrics port over a CollectorRegistry of its own, and what `GET /metrics` serves."""

    # The classic text format every Prometheus reads (the library's own default when a scraper
    # asks for nothing else); the bot's names and labels need nothing newer.
    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        outbox_backlog: Callable[[], Awaitable[OutboxBacklog]] | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._outbox_backlog = outbox_backlog
        self._clock = clock
        r = self.registry
        self.requests_filed = Counter(
            f"{PREFIX}_requests_filed", "Requests filed, by kind.", ["kind"], registry=r
        )
        self.requests_decided = Counter(
            f"{PREFIX}_requests_decided",
            "Decisions on pending requests, by kind and outcome.",
            ["kind", "outcome"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            f"{PREFIX}_request_decision_seconds",
            "Time from filing a request to its decision.",
            ["kind", "outcome"],
            buckets=_DECISION_BUCKETS,
            registry=r,
        )
        self.requests_finished = Counter(
            f"{PREFIX}_requests_finished",
            "Approvals carried out, by kind and how they ended.",
            ["kind", "outcome"],
            registry=r,
        )
        self.leases_recovered = Counter(
            f"{PREFIX}_leases_recovered",
            "Approvals taken over after their holder stopped.",
            registry=r,
        )
        self.connect_requests = Counter(
            f"{PREFIX}_connect_requests",
            "HTTP attempts to Connect, by method, endpoint template, outcome (status or why "
            "there was none) and Connect's error code.",
            ["method", "endpoint", "outcome", "code"],
            registry=r,
        )
        self.connect_seconds = Histogram(
            f"{PREFIX}_connect_request_seconds",
            "Latency of HTTP attempts to Connect, by method and endpoint template.",
            ["method", "endpoint"],
            buckets=_CONNECT_BUCKETS,
            registry=r,
        )
        self.slack_errors = Counter(
            f"{PREFIX}_slack_api_errors",
            "Slack Web API calls answered with an error, by method and error code.",
            ["method", "error"],
            registry=r,
        )
        self.slack_rate_limits = Counter(
            f"{PREFIX}_slack_api_rate_limited",
            "Slack Web API calls answered 429, by method.",
            ["method"],
            registry=r,
        )
        self.cache_lookups = Counter(
            f"{PREFIX}_cache_lookups",
            "Shared-cache reads, by cache and result (hit, miss, shared).",
            ["cache", "result"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            f"{PREFIX}_outbox_messages",
            "Messages owed and not yet delivered or given up (all replicas share the outbox).",
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            f"{PREFIX}_outbox_oldest_age_seconds",
            "Age of the oldest undelivered message (0 when there is none).",
            registry=r,
        )
        self.messages_given_up = Counter(
            f"{PREFIX}_outbox_given_up",
            "Owed messages given up (Slack refused them for good, or every attempt failed), "
            "by kind.",
            ["kind"],
            registry=r,
        )
        # Every kind shown from the start at 0: a series that first appears at 1 has no
        # increase() to alert on.
        for kind in sorted(_OUTBOX_KINDS):
            self.messages_given_up.labels(kind)
        self.outbox_read_failures = Counter(
            f"{PREFIX}_outbox_read_failures",
            "Scrapes that could not read the outbox's numbers (the last ones were served).",
            registry=r,
        )

    # -- the port ---------------------------------------------------------------------------

    def request_filed(self, kind: str) -> None:
        self.requests_filed.labels(safe_label(kind)).inc()

    def request_decided(self, kind: str, outcome: str, seconds: float | None) -> None:
        kind, outcome = safe_label(kind), safe_label(outcome)
        self.requests_decided.labels(kind, outcome).inc()
        if seconds is not None:
            self.decision_seconds.labels(kind, outcome).observe(max(0.0, seconds))

    def request_finished(self, kind: str, outcome: str) -> None:
        self.requests_finished.labels(safe_label(kind), safe_label(outcome)).inc()

    def lease_recovered(self) -> None:
        self.leases_recovered.inc()

    def connect_call(
        self, method: str, endpoint: str, outcome: str, code: str, seconds: float
    ) -> None:
        method, endpoint = safe_label(method), endpoint_template(endpoint)
        self.connect_requests.labels(
            method, endpoint, safe_label(outcome), connect_code_label(code)
        ).inc()
        self.connect_seconds.labels(method, endpoint).observe(seconds)

    def slack_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(safe_label(method), safe_label(error)).inc()

    def slack_rate_limited(self, method: str) -> None:
        self.slack_rate_limits.labels(safe_label(method)).inc()

    def cache_lookup(self, cache: str, result: str) -> None:
        self.cache_lookups.labels(safe_label(cache), safe_label(result)).inc()

    def outbox_given_up(self, kind: str) -> None:
        self.messages_given_up.labels(kind if kind in _OUTBOX_KINDS else "other").inc()

    # -- the scrape -------------------------------------------------------------------------

    async def exposition(self) -> bytes:
        """The text `GET /metrics` serves, with the outbox's numbers read now."""
        await self._refresh_outbox()
        return generate_latest(self.registry)

    async def _refresh_outbox(self) -> None:
        if self._outbox_backlog is None:
            return
        try:
            depth, oldest = await asyncio.wait_for(self._outbox_backlog(), BACKLOG_READ_SECONDS)
        except Exception as exc:  # the store down must not fail the scrape of everything else
            log.warning("metrics: could not read the outbox: %s", type(exc).__name__)
            self.outbox_read_failures.inc()
            return
        self.outbox_depth.set(depth)
        age = 0.0 if oldest is None else (self._clock() - oldest).total_seconds()
        self.outbox_oldest_age.set(max(0.0, age))
