"""The group request form is submitted: file the request to bring a directory group into
Connect. The outbox then posts the card and confirms to the requester; a duplicate, a name
several directory groups share, or a group in Connect already is answered here."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import view_input
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.messages import duplicate_request_message
from bot.slack.ui.refusals import file_problem_message
from bot.slack.ui.values import decode_group_metadata
from bot.workflow.outcomes import Duplicate, Filed

log = logging.getLogger(__name__)

OUTDATED = "This form is out of date. Close it and search again."
NO_JUSTIFICATION = "Please say why Connect needs this group."


def listener(deps: ListenerDeps) -> Listener:
    async def group_request_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        justification = view_input(view, ids.JUSTIFICATION_BLOCK, ids.JUSTIFICATION_INPUT).strip()
        name, response_url = decode_group_metadata(str(view.get("private_metadata") or ""))
        if name is None:
            await ack(response_action="errors", errors={ids.JUSTIFICATION_BLOCK: OUTDATED})
            return
        if not justification:
            await ack(response_action="errors", errors={ids.JUSTIFICATION_BLOCK: NO_JUSTIFICATION})
            return
        await ack()
        user_id = body["user"]["id"]

        deps.after_submit(
            user_id,
            response_url,
            file_group_request(deps, user_id, name, justification, response_url),
            name="file-group-request",
            failure="Something went wrong while filing your group request. Please try again.",
        )

    return group_request_submitted


async def file_group_request(
    deps: ListenerDeps, user_id: str, name: str, justification: str, response_url: str | None
) -> None:
    # The same gate as the search that showed the group, checked again now.
    if await deps.refuse_unless_searcher(user_id, response_url):
        return
    outcome = await deps.requests.file_group_request(
        requester_id=user_id, name=name, justification=justification, response_url=response_url
    )
    if isinstance(outcome, Filed):
        log.info("group request %s filed", outcome.request.id)
        return  # the outbox posts the card and confirms to the requester
    if isinstance(outcome, Duplicate):
        permalink = await deps.notifier.card_permalink(outcome.existing)
        message = duplicate_request_message(outcome.existing, card_permalink=permalink)
    else:
        message = file_problem_message(outcome.problem, username=name)
    await respond.privately(
        deps.client, user_id=user_id, message=message, response_url=response_url
    )
