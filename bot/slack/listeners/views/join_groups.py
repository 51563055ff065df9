"""The Join groups form is submitted: file the request to add an existing account to Connect
groups. The account's GUID and the groups' GUIDs come back from Slack: the workflow reads each
from Connect again; the outbox then posts the card and confirms to the requester."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import view_input, view_selected_many
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.messages import duplicate_request_message
from bot.slack.ui.refusals import file_problem_message
from bot.slack.ui.values import RoleChangeTarget, decode_role_change_metadata
from bot.workflow.outcomes import Duplicate, Filed

log = logging.getLogger(__name__)

OUTDATED = "This form is out of date. Close it and search again."
NO_GROUPS = "Please choose at least one group."
NO_JUSTIFICATION = "Please say why they need these groups."


def listener(deps: ListenerDeps) -> Listener:
    async def join_groups_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        target, response_url = decode_role_change_metadata(str(view.get("private_metadata") or ""))
        if target is None:
            await ack(response_action="errors", errors={ids.JUSTIFICATION_BLOCK: OUTDATED})
            return
        group_guids = view_selected_many(view, ids.GROUPS_BLOCK, ids.GROUPS_INPUT)
        justification = view_input(view, ids.JUSTIFICATION_BLOCK, ids.JUSTIFICATION_INPUT).strip()
        errors: dict[str, str] = {}
        if not group_guids:
            errors[ids.GROUPS_BLOCK] = NO_GROUPS
        if not justification:
            errors[ids.JUSTIFICATION_BLOCK] = NO_JUSTIFICATION
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        user_id = body["user"]["id"]

        deps.after_submit(
            user_id,
            response_url,
            file_join_groups(deps, user_id, target, group_guids, justification, response_url),
            name="file-join-groups",
            failure="Something went wrong while filing your request. Please try again.",
        )

    return join_groups_submitted


async def file_join_groups(
    deps: ListenerDeps,
    user_id: str,
    target: RoleChangeTarget,
    group_guids: list[str],
    justification: str,
    response_url: str | None,
) -> None:
    # The same gate as the search that showed the account, checked again now.
    if await deps.refuse_unless_searcher(user_id, response_url):
        return
    outcome = await deps.requests.file_join_groups(
        requester_id=user_id,
        guid=target.guid,
        group_guids=group_guids,
        justification=justification,
        response_url=response_url,
    )
    if isinstance(outcome, Filed):
        log.info("join groups request %s filed", outcome.request.id)
        return  # the outbox posts the card and confirms to the requester
    if isinstance(outcome, Duplicate):
        permalink = await deps.notifier.card_permalink(outcome.existing)
        message = duplicate_request_message(outcome.existing, card_permalink=permalink)
    else:
        message = file_problem_message(outcome.problem, username=target.username)
    await respond.privately(
        deps.client, user_id=user_id, message=message, response_url=response_url
    )
