"""Options for an external select (a `block_suggestion`): the Connect groups a request form
offers, matching what the requester typed. Slack waits 3 seconds for them, so the look-up gets
a budget below that and an empty list otherwise; any other select (forged, or from a future
version's form) gets an empty list rather than Bolt's 404 "unhandled request"."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.groups import group_options

log = logging.getLogger(__name__)

# Slack's 3 s, less the way there and back.
OPTIONS_BUDGET_SECONDS = 2.0


def listener(deps: ListenerDeps) -> Listener:
    async def options(ack: AsyncAck, body: dict[str, Any]) -> None:
        if body.get("action_id") != ids.GROUPS_INPUT:
            await ack(options=[])
            return
        user_id = str((body.get("user") or {}).get("id") or "")
        typed = str(body.get("value") or "")[:100]
        try:
            found = await asyncio.wait_for(
                _groups_for(deps, user_id, typed), OPTIONS_BUDGET_SECONDS
            )
        except TimeoutError:
            log.warning("Connect groups for a form were not found in time")
            found = []
        await ack(options=found)

    return options


async def _groups_for(deps: ListenerDeps, user_id: str, typed: str) -> list[dict[str, Any]]:
    # Connect's groups are shown only to those who may search (the forms' own gate).
    if await deps.people.search_refusal(user_id) is not None:
        return []
    return group_options(await deps.requests.group_options(typed))
