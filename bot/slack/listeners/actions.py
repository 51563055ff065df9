"""Button clicks: Request account (on the requester's ephemeral results), Approve and Deny (on the
approval card)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks
from bot.slack.listeners import ListenerDeps
from bot.slack.listeners.replies import reply, reply_or_ephemeral
from bot.workflow.service import Decided, Refused
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[0-9a-f]{8,32}$")
# The deny modal must open within the trigger's 3 s; the authorisation pre-check gets part of it.
DENY_PRECHECK_SECONDS = 1.5
SEARCH_AGAIN = (
    "That button no longer works. Search again with `/connect-user search &lt;prefix&gt;`."
)


def _click(body: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    """(value, clicker, response_url, channel) of a block_actions payload.

    Clicks on ephemeral messages carry `container.is_ephemeral` and no `message`: read only what
    both kinds have.
    """
    action = (body.get("actions") or [{}])[0]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    return (
        str(action.get("value") or ""),
        body["user"]["id"],
        body.get("response_url"),
        channel,
    )


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.action(blocks.ACTION_REQUEST_ACCOUNT)
    async def request_account(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        value, _, response_url, _ = _click(body)
        person = blocks.decode_person_value(value)
        if person is None:
            await reply(
                response_url,
                blocks.refusal_message(SEARCH_AGAIN),
            )
            return
        # Open the modal before anything slow: the trigger_id is valid for 3 seconds only.
        metadata = json.dumps({"v": value, "r": response_url}, separators=(",", ":"))
        if len(metadata) > blocks.MAX_PRIVATE_METADATA:
            metadata = json.dumps({"v": value}, separators=(",", ":"))
        try:
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=blocks.justification_modal(person=person, private_metadata=metadata),
            )
        except SlackApiError as exc:
            log.warning("views.open failed for a request: %s", exc.response.get("error"))
            await reply(
                response_url,
                blocks.refusal_message(
                    "Slack didn't let me open the request form in time. "
                    "Please press the button again."
                ),
            )

    @app.action(blocks.ACTION_APPROVE)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        value, user_id, response_url, channel = _click(body)

        async def report_failure(_: BaseException) -> None:
            await reply(
                response_url,
                blocks.refusal_message(
                    "Something went wrong while approving. The card shows the request's state; "
                    "press Approve again if it is still pending."
                ),
            )

        deps.supervisor.spawn(
            run_approve(deps, value, user_id, response_url, channel),
            name="approve",
            on_error=report_failure,
        )

    @app.action(blocks.ACTION_DENY)
    async def deny(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        value, user_id, response_url, _ = _click(body)
        if not REQUEST_ID.match(value):
            await reply(response_url, blocks.approval_refusal("not_found"))
            return
        try:
            refused = await asyncio.wait_for(
                deps.service.check_can_decide(value, user_id), DENY_PRECHECK_SECONDS
            )
        except TimeoutError:
            refused = None  # decided again, for real, when the reason is submitted
        if refused is not None:
            await reply(response_url, _refusal(refused))
            return
        request = await deps.service.store.get(value)
        try:
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=blocks.deny_modal(
                    request_id=value, username=request.username if request else ""
                ),
            )
        except SlackApiError as exc:
            log.warning("views.open failed for a denial: %s", exc.response.get("error"))
            await reply(
                response_url,
                blocks.refusal_message(
                    "Slack didn't let me open the form in time. Please press Deny again."
                ),
            )

    @app.action(re.compile(r".*"))
    async def unknown_action(ack: AsyncAck, body: dict[str, Any]) -> None:
        # Buttons from an older version of the bot, or forged payloads: answer, change nothing.
        await ack()
        _, _, response_url, _ = _click(body)
        await reply(
            response_url,
            blocks.refusal_message(SEARCH_AGAIN),
        )


def _refusal(refused: Refused) -> dict[str, Any]:
    state = refused.request.state.value if refused.request else None
    return blocks.approval_refusal(refused.reason.value, state=state)


async def run_approve(
    deps: ListenerDeps, value: str, user_id: str, response_url: str | None, channel: str | None
) -> None:
    if not REQUEST_ID.match(value):
        await reply(response_url, blocks.approval_refusal("not_found"))
        return
    outcome = await deps.service.approve(value, user_id)
    if isinstance(outcome, Refused):
        await reply_or_ephemeral(
            deps.notifier.client,
            response_url=response_url,
            channel=channel,
            user_id=user_id,
            message=_refusal(outcome),
        )
        return
    assert isinstance(outcome, Decided)
    request = outcome.request
    if request.state is not RequestState.APPROVED and request.last_error:
        # Still pending (or unsettled): the card says so too, but the approver clicked and is
        # owed an answer of their own.
        await reply(
            response_url,
            blocks.refusal_message("The account could not be created:", detail=request.last_error),
        )
