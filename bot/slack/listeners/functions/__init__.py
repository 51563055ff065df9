"""Workflow Builder custom steps the app offers (declared under `functions:` in manifest.yml)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.deps import ListenerDeps
from bot.slack.listeners.functions import request_connect_account

CALLBACK_ID = request_connect_account.CALLBACK_ID


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    app.function(CALLBACK_ID)(request_connect_account.listener(deps))
