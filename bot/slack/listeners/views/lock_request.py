"""The lock (or unlock) form is submitted: file the request for the account the form names
(read from Connect now). The outbox posts the card and confirms to the requester where they
clicked (their search results), else a DM confirms; a duplicate or an account that cannot be
asked for is answered here."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import view_input
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.messages import duplicate_request_message, requester_confirmation
from bot.slack.ui.refusals import file_problem_message
from bot.slack.ui.values import LockTarget, decode_lock_metadata
from bot.workflow.outcomes import Duplicate, Filed

OUTDATED = "This form is out of date. Close it and search again."
NO_JUSTIFICATION = "Please say why."


def listener(deps: ListenerDeps) -> Listener:
    async def lock_request_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        target, response_url = decode_lock_metadata(str(view.get("private_metadata") or ""))
        if target is None:
            await ack(response_action="errors", errors={ids.JUSTIFICATION_BLOCK: OUTDATED})
            return
        justification = view_input(view, ids.JUSTIFICATION_BLOCK, ids.JUSTIFICATION_INPUT).strip()
        if not justification:
            await ack(response_action="errors", errors={ids.JUSTIFICATION_BLOCK: NO_JUSTIFICATION})
            return
        await ack()
        user_id = body["user"]["id"]

        deps.after_submit(
            user_id,
            response_url,
            file_lock(deps, user_id, target, justification, response_url),
            name="file-lock",
            failure="Something went wrong while filing your request. Please try again.",
        )

    return lock_request_submitted


async def file_lock(
    deps: ListenerDeps,
    user_id: str,
    target: LockTarget,
    justification: str,
    response_url: str | None,
) -> None:
    # The account's details reach the approvers: the same gate as a search, checked now.
    if await deps.refuse_unless_searcher(user_id, response_url):
        return
    outcome = await deps.requests.file_lock(
        requester_id=user_id,
        lock=target.lock,
        guid=target.guid,
        justification=justification,
        response_url=response_url,
    )
    if isinstance(outcome, Filed):
        if response_url:
            return  # the outbox posts the card and confirms where they clicked
        message = requester_confirmation(outcome.request, card_permalink=None)
    elif isinstance(outcome, Duplicate):
        permalink = await deps.notifier.card_permalink(outcome.existing)
        message = duplicate_request_message(outcome.existing, card_permalink=permalink)
    else:
        message = file_problem_message(outcome.problem, username="This account")
    await respond.privately(
        deps.client, user_id=user_id, message=message, response_url=response_url
    )
