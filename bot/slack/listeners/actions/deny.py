"""Deny, on the card or an approver's Home tab: check who clicked, then open the form that asks
why (the denial itself happens when it is submitted: views/deny_reason.py)."""

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
from bot.slack.ui.describe import subject_name
from bot.slack.ui.modals import deny_modal
from bot.slack.ui.refusals import approval_refusal, decision_refusal, refusal_message
from bot.slack.ui.values import is_request_id
from bot.workflow.outcomes import Refusal, Refused

log = logging.getLogger(__name__)

# The deny modal must open within the trigger's 3 s; the authorisation pre-check gets part of it.
DENY_PRECHECK_SECONDS = 1.5
FORM_NOT_OPENED = "Slack didn't let me open the form in time. Please press Deny again."
FAILURE = (
    "Something went wrong on my side, so the form did not open. "
    "Please press Deny again in a moment."
)


def listener(deps: ListenerDeps) -> Listener:
    async def deny(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        # The form is opened here, on the click's own path, not as supervised work: the
        # trigger_id is valid for 3 seconds. After ack() nothing else answers the clicker
        # (Bolt's error handler only logs), so a failure is answered here.
        try:
            await open_deny_form(deps, click, body.get("trigger_id"), client)
        except Exception:
            log.exception("a Deny click failed")
            await respond.to_clicker(deps.client, click, refusal_message(FAILURE), home=deps.home)

    return deny


async def open_deny_form(
    deps: ListenerDeps, click: Click, trigger_id: str | None, client: AsyncWebClient
) -> None:
    value, user_id = click.value, click.user_id
    if not is_request_id(value):
        message = approval_refusal(Refusal.NOT_FOUND)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    if not trigger_id:
        log.warning("a Deny click came without a trigger_id")
        await respond.to_clicker(
            deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
        )
        return
    try:
        checked = await asyncio.wait_for(
            deps.requests.check_can_decide(value, user_id), DENY_PRECHECK_SECONDS
        )
    except TimeoutError:
        checked = None  # decided again, for real, when the reason is submitted
    if isinstance(checked, Refused):
        await respond.to_clicker(deps.client, click, decision_refusal(checked), home=deps.home)
        return
    try:
        await client.views_open(
            trigger_id=trigger_id,
            view=deny_modal(request_id=value, username=subject_name(checked) if checked else ""),
        )
    except SlackApiError as exc:
        log.warning("views.open failed for a denial: %s", exc.response.get("error"))
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
        log.warning("views.open failed for a denial: %s", type(exc).__name__)
    else:
        return
    await respond.to_clicker(deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home)
