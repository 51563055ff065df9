"""Approve all and Deny all, on a batch's card: every pending request of the card's part the
clicker may decide, each through the same gate as its own buttons (checked per request, at
click time); the clicker is told who was skipped and why. Deny all asks for one reason first
(views/deny_all.py)."""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.batch_request import batch_decision_message, deny_all_modal
from bot.slack.ui.refusals import approval_refusal, refusal_message
from bot.workflow.outcomes import Refusal

log = logging.getLogger(__name__)

_VALUE = re.compile(r"([0-9a-f]{16}):(\d{1,2})")
FAILURE = (
    "Something went wrong while deciding the card's requests. The card shows where each stands."
)
FORM_NOT_OPENED = "Slack didn't let me open the form in time. Please press Deny all again."


def parse_value(value: str) -> tuple[str, int] | None:
    """The batch and part an Approve all / Deny all carries; None for anything else."""
    match = _VALUE.fullmatch(value)
    return (match.group(1), int(match.group(2))) if match else None


def approve_all(deps: ListenerDeps) -> Listener:
    async def clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        deps.after_click(click, run_approve_all(deps, click), name="approve-all", failure=FAILURE)

    return clicked


async def run_approve_all(deps: ListenerDeps, click: Click) -> None:
    target = parse_value(click.value)
    if target is None:
        await respond.to_clicker(
            deps.client, click, approval_refusal(Refusal.NOT_FOUND), home=deps.home
        )
        return
    decision = await deps.batches.approve_all(*target, click.user_id)
    await respond.to_clicker(
        deps.client, click, batch_decision_message(decision, what="approved"), home=deps.home
    )


def deny_all(deps: ListenerDeps) -> Listener:
    async def clicked(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        target = parse_value(click.value)
        if target is None:
            await respond.to_clicker(
                deps.client, click, approval_refusal(Refusal.NOT_FOUND), home=deps.home
            )
            return
        trigger_id = body.get("trigger_id")
        try:
            if not trigger_id:
                raise TimeoutError
            # The count shown is what the card showed; denying checks each request again.
            pending = sum(
                1
                for b in ((body.get("message") or {}).get("blocks") or [])
                if str(b.get("block_id", "")).startswith("batch_decide:")
                and any(e.get("action_id") == "deny_request" for e in b.get("elements") or [])
            )
            await client.views_open(
                trigger_id=trigger_id, view=deny_all_modal(value=click.value, count=pending)
            )
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("views.open failed for Deny all: %s", type(exc).__name__)
            await respond.to_clicker(
                deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
            )

    return clicked
