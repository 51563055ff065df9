"""Approve, on the card or an approver's Home tab: the workflow decides (and creates the
account) after ack(); the card shows the outcome, the clicker hears of a failure."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.messages import decision_notice
from bot.slack.ui.refusals import approval_refusal, decision_refusal, refusal_message
from bot.slack.ui.values import is_request_id
from bot.workflow.outcomes import Decided, Refusal, Refused, RoleRaised
from bot.workflow.states import RequestState

FAILURE = (
    "Something went wrong while approving. The card shows the request's state; "
    "press Approve again if it is still pending."
)


def listener(deps: ListenerDeps) -> Listener:
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        deps.after_click(click, run_approve(deps, click), name="approve", failure=FAILURE)

    return approve


async def run_approve(deps: ListenerDeps, click: Click) -> None:
    if not is_request_id(click.value):
        message = approval_refusal(Refusal.NOT_FOUND)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    outcome = await deps.requests.approve(click.value, click.user_id)
    if isinstance(outcome, Refused):
        await respond.to_clicker(deps.client, click, decision_refusal(outcome), home=deps.home)
        return
    if isinstance(outcome, RoleRaised):
        message = refusal_message(
            "You chose a role above the one asked for. That is a new question, so nothing was "
            "approved yet: the card now asks for that role and waits for an approval.",
        )
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    assert isinstance(outcome, Decided)
    request = outcome.request
    if request.state is not RequestState.APPROVED and request.last_error:
        # Still pending (or unsettled): the card says so too, but the approver clicked and is
        # owed an answer of their own.
        headline = (
            "The outcome is not known yet:"
            if request.state is RequestState.PROVISIONING
            else "The account could not be created:"
        )
        message = refusal_message(headline, detail=request.last_error)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
    elif click.from_home:
        # On a card the card itself shows the outcome; on the Home tab the list must move on.
        await deps.home.publish(click.user_id, notice=decision_notice(request))
