"""What the web routes need from the running bot, and nothing more.

Built by the composition root (`bot.runtime.Runtime.web_deps`); web code never imports the
runtime itself, so the import graph keeps one direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from slack_bolt.async_app import AsyncApp
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.connect.client import ConnectClient
from bot.metrics import PrometheusMetrics
from bot.settings import Settings
from bot.workflow.clock import Clock, utcnow


class Pingable(Protocol):
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""


@dataclass(frozen=True, slots=True)
class WebDeps:
    settings: Settings
    bolt: AsyncApp  # Slack's requests, once verified, go to it
    store: Pingable  # the health check
    engine: AsyncEngine  # the audit page's read-only queries
    connect: ConnectClient  # who a visitor is, when the credentials header holds GUIDs
    clock: Clock = utcnow  # the bot's now: which weeks the audit page's insights show
    metrics: PrometheusMetrics | None = None  # GET /metrics; None: METRICS_ENABLED is off
