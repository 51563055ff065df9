"""Keep, on the card the bot posts when Slack deactivates someone: decline locking their Connect
account. The same decision as Deny (the approver checked at click time, one conditional update,
recorded on the request), with the reason said for them."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.refusals import approval_refusal, decision_refusal
from bot.slack.ui.values import is_request_id
from bot.workflow.outcomes import Refusal, Refused

KEEP_REASON = "Kept: an approver decided the Connect account stays active."
FAILURE = "Something went wrong on my side. The card shows the request's state."


def listener(deps: ListenerDeps) -> Listener:
    async def keep(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        deps.after_click(click, click_keep(deps, click), name="keep", failure=FAILURE)

    return keep


async def click_keep(deps: ListenerDeps, click: Click) -> None:
    if not is_request_id(click.value):
        await respond.to_clicker(
            deps.client, click, approval_refusal(Refusal.NOT_FOUND), home=deps.home
        )
        return
    outcome = await deps.requests.deny(click.value, click.user_id, KEEP_REASON)
    if isinstance(outcome, Refused):
        await respond.to_clicker(deps.client, click, decision_refusal(outcome), home=deps.home)
