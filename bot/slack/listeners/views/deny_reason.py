"""The deny form is submitted: the workflow checks the approver again and denies. The card shows
the outcome; a refusal is told to the approver (the form has no response_url: ephemeral in the
approver channel, else a DM)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import view_input
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.kit import Message
from bot.slack.ui.refusals import approval_refusal, decision_refusal, refusal_message
from bot.slack.ui.values import is_request_id
from bot.workflow.outcomes import Refusal, Refused


def listener(deps: ListenerDeps) -> Listener:
    async def deny_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = view_input(view, ids.DENY_REASON_BLOCK, ids.DENY_REASON_INPUT).strip()
        if not reason:
            await ack(
                response_action="errors",
                errors={ids.DENY_REASON_BLOCK: "Please give the requester a reason."},
            )
            return
        request_id = str(view.get("private_metadata") or "")
        await ack()
        user_id = body["user"]["id"]
        if not is_request_id(request_id):
            await _tell(deps, user_id, approval_refusal(Refusal.NOT_FOUND))
            return

        async def report_failure(_: BaseException) -> None:
            await _tell(
                deps,
                user_id,
                refusal_message(
                    "Something went wrong while denying. The card shows the request's state."
                ),
            )

        deps.supervisor.spawn(
            deny(deps, request_id, user_id, reason), name="deny", on_error=report_failure
        )

    return deny_submitted


async def _tell(deps: ListenerDeps, user_id: str, message: Message) -> None:
    await respond.privately(
        deps.client, user_id=user_id, message=message, channel=deps.approver_channel
    )


async def deny(deps: ListenerDeps, request_id: str, user_id: str, reason: str) -> None:
    outcome = await deps.requests.deny(request_id, user_id, reason)
    if isinstance(outcome, Refused):
        await _tell(deps, user_id, decision_refusal(outcome))
