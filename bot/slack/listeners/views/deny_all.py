"""Deny all's form is submitted: deny every pending request of the card's part the approver may
decide, with the one reason; tell them who was skipped."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import view_input
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.batch_request import batch_decision_message
from bot.slack.ui.refusals import approval_refusal, refusal_message
from bot.workflow.outcomes import Refusal


def listener(deps: ListenerDeps) -> Listener:
    async def submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = view_input(view, ids.DENY_REASON_BLOCK, ids.DENY_REASON_INPUT).strip()
        if not reason:
            await ack(
                response_action="errors",
                errors={ids.DENY_REASON_BLOCK: "Please give the requesters a reason."},
            )
            return
        await ack()
        user_id = body["user"]["id"]
        value = str(view.get("private_metadata") or "")

        async def tell(message: dict[str, Any]) -> None:
            await respond.privately(
                deps.client, user_id=user_id, message=message, channel=deps.approver_channel
            )

        async def run() -> None:
            batch_id, _, part = value.partition(":")
            if not (len(batch_id) == 16 and part.isdigit()):
                await tell(approval_refusal(Refusal.NOT_FOUND))
                return
            decision = await deps.batches.deny_all(batch_id, int(part), user_id, reason)
            await tell(batch_decision_message(decision, what="denied"))

        async def report_failure(_: BaseException) -> None:
            await tell(
                refusal_message("Something went wrong while denying. The card shows the state.")
            )

        deps.supervisor.spawn(run(), name="deny-all", on_error=report_failure)

    return submitted
