"""Close as it is, on an incomplete request's card or Home tab: an approver gives up the failed
step (the done ones stay done); the record says what Connect had when it was closed."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.messages import decision_notice
from bot.slack.ui.refusals import approval_refusal, decision_refusal
from bot.slack.ui.values import is_request_id
from bot.workflow.outcomes import Refusal, Refused

FAILURE = (
    "Something went wrong while closing the request. The card shows its state; press Close "
    "again if it is still incomplete."
)


def listener(deps: ListenerDeps) -> Listener:
    async def close(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        deps.after_click(click, run_close(deps, click), name="close", failure=FAILURE)

    return close


async def run_close(deps: ListenerDeps, click: Click) -> None:
    if not is_request_id(click.value):
        message = approval_refusal(Refusal.NOT_FOUND)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    outcome = await deps.requests.close(click.value, click.user_id)
    if isinstance(outcome, Refused):
        await respond.to_clicker(deps.client, click, decision_refusal(outcome), home=deps.home)
    elif click.from_home:
        # On a card the card itself shows the outcome; on the Home tab the list must move on.
        await deps.home.publish(click.user_id, notice=decision_notice(outcome.request))
