"""Request access for N people, under the list a requester's names resolved to: open the form
that asks why and which role (views/batch_request.py files the requests)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.batch_request import batch_request_modal, decode_batch_value
from bot.slack.ui.refusals import outdated_button_message, refusal_message

log = logging.getLogger(__name__)

ROLES_PRECHECK_SECONDS = 1.5
FORM_NOT_OPENED = (
    "Slack didn't let me open the request form in time. Please press the button again."
)


def listener(deps: ListenerDeps) -> Listener:
    async def request_batch(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        usernames = decode_batch_value(click.value)
        if usernames is None:
            await respond.via_response_url(click.response_url, outdated_button_message())
            return
        trigger_id = body.get("trigger_id")
        roles: tuple[str, ...] | None
        try:
            roles = await asyncio.wait_for(deps.requests.roles_offered(), ROLES_PRECHECK_SECONDS)
        except TimeoutError:
            roles = None  # the form says so; filing checks the role again
        try:
            if not trigger_id:
                raise TimeoutError
            await client.views_open(
                trigger_id=trigger_id,
                view=batch_request_modal(usernames, roles=roles, response_url=click.response_url),
            )
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("views.open failed for a batch request: %s", type(exc).__name__)
            await respond.to_clicker(
                deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
            )

    return request_batch
