"""Approving a request and answering the approver, shared by the Approve click (a request that
sets no role) and the submission of the approval confirmation (one that does)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.home import HomeTab
from bot.slack.interactions import Click
from bot.slack.ui.messages import (
    approval_counted_message,
    decision_notice,
    role_raised_message,
)
from bot.slack.ui.refusals import approval_refusal, decision_refusal, refusal_message
from bot.slack.ui.values import is_request_id
from bot.workflow.outcomes import (
    ApprovalCounted,
    Decided,
    DecisionOutcome,
    Refusal,
    Refused,
    RoleRaised,
)
from bot.workflow.requests import Requests
from bot.workflow.states import RequestState

FAILURE = (
    "Something went wrong while approving. The card shows the request's state; "
    "press Approve again if it is still pending."
)


async def approve_and_answer(
    requests: Requests,
    client: AsyncWebClient,
    home: HomeTab,
    click: Click,
    *,
    role: str | None = None,
    seen: str | None = None,
    note: str | None = None,
) -> None:
    """Approve the request `click.value` names, granting `role` (None: the role asked), with
    the approver's `note`, and tell the clicker what they are owed. `seen`: the role asked when
    the approver's confirmation opened."""
    if not is_request_id(click.value):
        message = approval_refusal(Refusal.NOT_FOUND)
        await respond.to_clicker(client, click, message, home=home)
        return
    outcome = await requests.approve(click.value, click.user_id, role=role, seen=seen, note=note)
    await answer_approval(client, home, click, outcome)


async def answer_approval(
    client: AsyncWebClient, home: HomeTab, click: Click, outcome: DecisionOutcome
) -> None:
    if isinstance(outcome, Refused):
        await respond.to_clicker(client, click, decision_refusal(outcome), home=home)
        return
    if isinstance(outcome, RoleRaised):
        message = role_raised_message(outcome.request)
        await respond.to_clicker(client, click, message, home=home)
        return
    if isinstance(outcome, ApprovalCounted):
        # The card shows the count too, but the approver is owed word that nothing happened
        # in Connect yet.
        message = approval_counted_message(
            outcome.request, needed=outcome.needed, role=outcome.role
        )
        await respond.to_clicker(client, click, message, home=home)
        return
    assert isinstance(outcome, Decided)
    request = outcome.request
    if request.state is not RequestState.APPROVED and request.last_error:
        # Still pending (or unsettled): the card says so too, but the approver clicked and is
        # owed an answer of their own.
        headline = (
            "The outcome is not known yet:"
            if request.state is RequestState.PROVISIONING
            else "The request could not be carried out:"
        )
        message = refusal_message(headline, detail=request.last_error)
        await respond.to_clicker(client, click, message, home=home)
    elif click.from_home:
        # On a card the card itself shows the outcome; on the Home tab the list must move on.
        await home.publish(click.user_id, notice=decision_notice(request))
