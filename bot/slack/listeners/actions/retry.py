"""Retry the failed step, on an incomplete request's card: the same click-time checks as a
decision, then only the steps left are carried out (the done ones stay done)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.messages import decision_notice
from bot.slack.ui.refusals import approval_refusal, decision_refusal, refusal_message
from bot.slack.ui.values import is_request_id
from bot.workflow.outcomes import Decided, Refusal, Refused
from bot.workflow.states import RequestState

FAILURE = (
    "Something went wrong while retrying. The card shows the request's state; "
    "press Retry again if a step still failed."
)


def listener(deps: ListenerDeps) -> Listener:
    async def retry(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        deps.after_click(click, run_retry(deps, click), name="retry", failure=FAILURE)

    return retry


async def run_retry(deps: ListenerDeps, click: Click) -> None:
    if not is_request_id(click.value):
        message = approval_refusal(Refusal.NOT_FOUND)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    outcome = await deps.requests.retry(click.value, click.user_id)
    if isinstance(outcome, Refused):
        await respond.to_clicker(deps.client, click, decision_refusal(outcome), home=deps.home)
        return
    assert isinstance(outcome, Decided)
    request = outcome.request
    if request.state is not RequestState.APPROVED and request.last_error:
        # The card says so too, but the approver clicked and is owed an answer of their own.
        message = refusal_message("The step failed again:", detail=request.last_error)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
    elif click.from_home:
        # On a card the card itself shows the outcome; on the Home tab the list must move on.
        await deps.home.publish(click.user_id, notice=decision_notice(request))
