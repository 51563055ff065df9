"""Button clicks: Request account (on the requester's ephemeral results), Approve and Deny (on the
approval card and the approvers' Home tab), Cancel (under the requester's confirmation, in
`/connect-user status` and on their Home tab).

A click on the Home tab carries `view` and neither `message`, `channel` nor `response_url`: its
answer is shown at the top of the refreshed Home tab instead (a DM if that fails).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners import ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.messages import cancelled_message, decision_notice
from bot.slack.ui.modals import deny_modal, justification_modal
from bot.slack.ui.refusals import (
    approval_refusal,
    cancel_refusal,
    decision_refusal,
    outdated_button_message,
    refusal_message,
)
from bot.slack.values import decode_person_value, encode_justification_metadata, is_request_id
from bot.workflow.outcomes import Decided, Refusal, Refused
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)

# The deny modal must open within the trigger's 3 s; the authorisation pre-check gets part of it.
DENY_PRECHECK_SECONDS = 1.5


async def _answer(
    deps: ListenerDeps, click: Click, message: dict[str, Any], *, replace: bool = False
) -> None:
    await respond.to_clicker(deps.notifier.client, click, message, home=deps.home, replace=replace)


def _supervise(
    deps: ListenerDeps, click: Click, work: Coroutine[Any, Any, None], *, name: str, failure: str
) -> None:
    """Run a click's work after ack() under supervision; if it fails, tell the clicker."""

    async def report_failure(_: BaseException) -> None:
        await _answer(deps, click, refusal_message(failure))

    deps.supervisor.spawn(work, name=name, on_error=report_failure)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.action(ids.ACTION_REQUEST_ACCOUNT)
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

    @app.action(ids.ACTION_APPROVE)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        _supervise(
            deps,
            click,
            run_approve(deps, click),
            name="approve",
            failure="Something went wrong while approving. The card shows the request's state; "
            "press Approve again if it is still pending.",
        )

    @app.action(ids.ACTION_DENY)
    async def deny(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        value, user_id = click.value, click.user_id
        if not is_request_id(value):
            await _answer(deps, click, approval_refusal(Refusal.NOT_FOUND))
            return
        try:
            checked = await asyncio.wait_for(
                deps.requests.check_can_decide(value, user_id), DENY_PRECHECK_SECONDS
            )
        except TimeoutError:
            checked = None  # decided again, for real, when the reason is submitted
        if isinstance(checked, Refused):
            await _answer(deps, click, decision_refusal(checked))
            return
        try:
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=deny_modal(request_id=value, username=checked.username if checked else ""),
            )
        except SlackApiError as exc:
            log.warning("views.open failed for a denial: %s", exc.response.get("error"))
            await _answer(
                deps,
                click,
                refusal_message(
                    "Slack didn't let me open the form in time. Please press Deny again."
                ),
            )

    @app.action(ids.ACTION_CANCEL)
    async def cancel(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        _supervise(
            deps,
            click,
            run_cancel(deps, click),
            name="cancel",
            failure="Something went wrong while cancelling. `/connect-user status` shows the "
            "request's state; press Cancel again if it is still waiting.",
        )

    # Registered last: Bolt runs the first listener that matches, and this one matches anything.
    @app.action(re.compile(r".*"))
    async def unknown_action(ack: AsyncAck, body: dict[str, Any]) -> None:
        # Buttons from an older version of the bot, or forged payloads: answer, change nothing.
        await ack()
        await respond.via_response_url(read_click(body).response_url, outdated_button_message())

    # The bot offers no external selects: a block_suggestion (forged, or from a future version's
    # form) gets an empty list rather than Bolt's 404 "unhandled request".
    @app.options(re.compile(r".*"))
    async def no_options(ack: AsyncAck) -> None:
        await ack(options=[])


async def run_approve(deps: ListenerDeps, click: Click) -> None:
    if not is_request_id(click.value):
        await _answer(deps, click, approval_refusal(Refusal.NOT_FOUND))
        return
    outcome = await deps.requests.approve(click.value, click.user_id)
    if isinstance(outcome, Refused):
        await _answer(deps, click, decision_refusal(outcome))
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
        await _answer(deps, click, refusal_message(headline, detail=request.last_error))
    elif click.from_home:
        # On a card the card itself shows the outcome; on the Home tab the list must move on.
        await deps.home.publish(click.user_id, notice=decision_notice(request))


async def run_cancel(deps: ListenerDeps, click: Click) -> None:
    if not is_request_id(click.value):
        await _answer(deps, click, cancel_refusal(Refusal.NOT_FOUND))
        return
    outcome = await deps.requests.cancel(click.value, click.user_id)
    if isinstance(outcome, Refused):
        state = outcome.request.state if outcome.request else None
        await _answer(deps, click, cancel_refusal(outcome.reason, state=state))
        return
    # The clicked message (confirmation, status list) offered a button that no longer applies.
    await _answer(deps, click, cancelled_message(outcome.request), replace=True)
