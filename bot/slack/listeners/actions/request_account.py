"""Request account, on the requester's search results: open the form that asks why."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.modals import justification_modal
from bot.slack.ui.refusals import outdated_button_message, refusal_message
from bot.slack.ui.values import decode_person_value, encode_justification_metadata

log = logging.getLogger(__name__)


def listener(deps: ListenerDeps) -> Listener:
    async def request_account(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        value, response_url = click.value, click.response_url
        person = decode_person_value(value)
        if person is None:
            await respond.via_response_url(response_url, outdated_button_message())
            return
        # Open the modal before anything slow: the trigger_id is valid for 3 seconds only.
        metadata = encode_justification_metadata(value, response_url)
        try:
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=justification_modal(person=person, private_metadata=metadata),
            )
        except SlackApiError as exc:
            log.warning("views.open failed for a request: %s", exc.response.get("error"))
            await respond.via_response_url(
                response_url,
                refusal_message(
                    "Slack didn't let me open the request form in time. "
                    "Please press the button again."
                ),
            )

    return request_account
