"""Approve, on the card or an approver's Home tab. A request that sets a role opens a
confirmation first (the role to grant, the one asked preselected, and a note:
views/approve_role.py approves when it is submitted); any other request is approved by the
click, or by the same confirmation (a note only) from "Approve with note". Either way the
workflow decides (and carries the request out) after ack(), checking the approver again; the
card shows the outcome, the clicker hears of a refusal or a failure."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack import respond
from bot.slack.approval import FAILURE, approve_and_answer
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.modals import approve_modal
from bot.slack.ui.refusals import approval_refusal, decision_refusal, refusal_message
from bot.slack.ui.values import ApprovalForm, encode_approval_metadata, is_request_id
from bot.workflow.models import StepAction
from bot.workflow.outcomes import Refusal, Refused

log = logging.getLogger(__name__)

# The confirmation must open within the trigger's 3 s; looking at the request (and who clicked)
# gets part of it.
APPROVE_PRECHECK_SECONDS = 1.5
NOT_CHECKED = (
    "I couldn't look at the request in time, so nothing was approved. Please press Approve again."
)
FORM_NOT_OPENED = (
    "Slack didn't let me open the confirmation in time, so nothing was approved. "
    "Please press Approve again."
)


def listener(deps: ListenerDeps, *, with_note: bool = False) -> Listener:
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        # Supervised, and started at once: a confirmation must open with the trigger_id,
        # valid for 3 seconds.
        deps.after_click(
            click,
            click_approve(deps, click, body.get("trigger_id"), with_note=with_note),
            name="approve",
            failure=FAILURE,
        )

    return approve


async def click_approve(
    deps: ListenerDeps, click: Click, trigger_id: str | None, *, with_note: bool = False
) -> None:
    """A request with a role step, or a click on "Approve with note": open the confirmation;
    any other: approve."""
    if not is_request_id(click.value):
        message = approval_refusal(Refusal.NOT_FOUND)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    try:
        checked = await asyncio.wait_for(
            deps.requests.check_can_decide(click.value, click.user_id), APPROVE_PRECHECK_SECONDS
        )
    except TimeoutError:
        await respond.to_clicker(deps.client, click, refusal_message(NOT_CHECKED), home=deps.home)
        return
    if isinstance(checked, Refused):
        await respond.to_clicker(deps.client, click, decision_refusal(checked), home=deps.home)
        return
    if checked.step(StepAction.SET_ROLE) is None and not with_note:
        await run_approve(deps, click)
        return
    if trigger_id:
        form = ApprovalForm(
            request_id=checked.id,
            response_url=click.response_url,
            channel=click.channel,
            from_home=click.from_home,
            role_asked=checked.role_asked,
        )
        view = approve_modal(
            checked,
            roles=deps.requests.requestable_roles,
            private_metadata=encode_approval_metadata(form),
            approvals_needed=deps.requests.approvals_required.needed(checked.role_asked),
        )
        try:
            await deps.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("views.open failed for an approval: %s", exc.response.get("error"))
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("views.open failed for an approval: %s", type(exc).__name__)
        else:
            return
    else:
        log.warning("an Approve click came without a trigger_id")
    await respond.to_clicker(deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home)


async def run_approve(deps: ListenerDeps, click: Click) -> None:
    await approve_and_answer(deps.requests, deps.client, deps.home, click)
