"""Slash commands: `/connect-user` (search, status, pending, seats, help)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.commands import connect_user
from bot.slack.listeners.deps import ListenerDeps


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    app.command(deps.command)(connect_user.listener(deps))
