"""Request group, on a directory group in `group search` results: open the form that asks why.
The button carries the group's name only: filing reads the group and its ticket again."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.groups import group_request_modal
from bot.slack.ui.refusals import outdated_button_message, refusal_message
from bot.slack.ui.values import decode_group_value, encode_group_metadata

log = logging.getLogger(__name__)

FORM_NOT_OPENED = (
    "Slack didn't let me open the group request form in time. Please press the button again."
)


def listener(deps: ListenerDeps) -> Listener:
    async def request_group(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        name = decode_group_value(click.value)
        if name is None:
            await respond.via_response_url(click.response_url, outdated_button_message())
            return
        trigger_id = body.get("trigger_id")
        if trigger_id:
            # Nothing slow first: the trigger_id is valid for 3 seconds.
            metadata = encode_group_metadata(name, click.response_url)
            try:
                await client.views_open(
                    trigger_id=trigger_id,
                    view=group_request_modal(name=name, private_metadata=metadata),
                )
                return
            except SlackApiError as exc:
                log.warning("views.open failed for a group: %s", exc.response.get("error"))
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("views.open failed for a group: %s", type(exc).__name__)
        await respond.to_clicker(
            deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
        )

    return request_group
