"""Request my Connect account, on the Home tab: the modal that finds the clicker's own directory
entry and asks why (listeners/own_request.py), as `/connect-user request` does."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.own_request import FAILURE, open_own_request
from bot.slack.ui.refusals import refusal_message

log = logging.getLogger(__name__)


def listener(deps: ListenerDeps) -> Listener:
    async def request_mine(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        # On the click's own path: the trigger_id is valid for 3 seconds.
        try:
            await open_own_request(deps.own_request, click, body.get("trigger_id"), client)
        except Exception:
            log.exception("a Request my account click failed")
            await respond.to_clicker(deps.client, click, refusal_message(FAILURE), home=deps.home)

    return request_mine
