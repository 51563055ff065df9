"""Request account, on the requester's search results: open the form that asks why."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.modals import justification_modal
from bot.slack.ui.refusals import outdated_button_message, refusal_message
from bot.slack.ui.values import decode_person_value, encode_justification_metadata
from bot.workflow.outcomes import GroupChoice, GroupChoiceProblem

log = logging.getLogger(__name__)

# The form must open within the trigger's 3 s; asking which roles can be offered gets part of it
# (usually answered from what the directory keeps).
ROLES_PRECHECK_SECONDS = 1.5

FORM_NOT_OPENED = (
    "Slack didn't let me open the request form in time. Please press the button again."
)
FAILURE = (
    "Something went wrong on my side, so the request form did not open. "
    "Please press the button again in a moment."
)


def listener(deps: ListenerDeps) -> Listener:
    async def request_account(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        # On the click's own path, not supervised work: the trigger_id is valid for 3 seconds.
        # After ack() nothing else answers the clicker, so a failure is answered here.
        try:
            await open_request_form(deps, click, body.get("trigger_id"), client)
        except Exception:
            log.exception("a Request account click failed")
            await respond.to_clicker(deps.client, click, refusal_message(FAILURE), home=deps.home)

    return request_account


async def open_request_form(
    deps: ListenerDeps, click: Click, trigger_id: str | None, client: AsyncWebClient
) -> None:
    value, response_url = click.value, click.response_url
    person = decode_person_value(value)
    if person is None:
        await respond.via_response_url(response_url, outdated_button_message())
        return
    if not trigger_id:
        log.warning("a Request account click came without a trigger_id")
        await respond.to_clicker(
            deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
        )
        return
    # Nothing slow before the modal opens: the trigger_id is valid for 3 seconds only.
    roles: tuple[str, ...] | None
    roles_task = asyncio.ensure_future(deps.requests.roles_offered())
    groups_task = asyncio.ensure_future(deps.requests.group_choice())
    try:
        roles = await asyncio.wait_for(roles_task, ROLES_PRECHECK_SECONDS)
    except TimeoutError:
        log.warning("could not tell in time which roles a request may ask for")
        roles = None  # the form says so; filing checks the role again
    # Asked side by side with the roles, within the same budget (usually from what is kept).
    groups: GroupChoice
    try:
        groups = await asyncio.wait_for(groups_task, 0.1 if roles is None else 0.5)
    except TimeoutError:
        groups = GroupChoice(GroupChoiceProblem.CANNOT_READ)  # filing checks them again
    metadata = encode_justification_metadata(value, response_url)
    try:
        await client.views_open(
            trigger_id=trigger_id,
            view=justification_modal(
                person=person, private_metadata=metadata, roles=roles, groups=groups
            ),
        )
    except SlackApiError as exc:
        log.warning("views.open failed for a request: %s", exc.response.get("error"))
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
        log.warning("views.open failed for a request: %s", type(exc).__name__)
    else:
        return
    await respond.to_clicker(deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home)
