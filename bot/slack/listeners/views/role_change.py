"""The role-change form is submitted: file the role change. The role comes back from Slack, so
it is checked here against the roles that may be asked for (and again by the workflow); the
outbox then posts the card and confirms to the requester; a duplicate or an account that cannot
be asked for is answered here."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.logs import request_id_var
from bot.slack import respond
from bot.slack.interactions import view_input, view_selected, view_selected_many
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.messages import duplicate_request_message
from bot.slack.ui.refusals import file_problem_message
from bot.slack.ui.values import RoleChangeTarget, decode_role_change_metadata
from bot.workflow.outcomes import Duplicate, Filed

log = logging.getLogger(__name__)

OUTDATED = "This form is out of date. Close it and search again."
NO_ROLE = "Please choose one of the roles offered."
NO_JUSTIFICATION = "Please say why this person needs this role."


def listener(deps: ListenerDeps) -> Listener:
    async def role_change_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        target, response_url = decode_role_change_metadata(str(view.get("private_metadata") or ""))
        if target is None:
            await ack(response_action="errors", errors={ids.ROLE_BLOCK: OUTDATED})
            return
        role = view_selected(view, ids.ROLE_BLOCK, ids.ROLE_INPUT) or ""
        justification = view_input(view, ids.JUSTIFICATION_BLOCK, ids.JUSTIFICATION_INPUT).strip()
        errors: dict[str, str] = {}
        if role not in deps.requests.requestable_roles:
            errors[ids.ROLE_BLOCK] = NO_ROLE
        if not justification:
            errors[ids.JUSTIFICATION_BLOCK] = NO_JUSTIFICATION
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        group_guids = view_selected_many(view, ids.GROUPS_BLOCK, ids.GROUPS_INPUT)
        await ack()
        user_id = body["user"]["id"]

        deps.after_submit(
            user_id,
            response_url,
            file_role_change(deps, user_id, target, role, justification, response_url, group_guids),
            name="file-role-change",
            failure="Something went wrong while filing your role change. Please try again.",
        )

    return role_change_submitted


async def file_role_change(
    deps: ListenerDeps,
    user_id: str,
    target: RoleChangeTarget,
    role: str,
    justification: str,
    response_url: str | None,
    group_guids: list[str] | None = None,
) -> None:
    # Filing shows the person's details to the approvers: the same gate as a search, checked
    # again now (the form may have been opened by someone who may no longer search, or forged).
    if await deps.refuse_unless_searcher(user_id, response_url):
        return
    outcome = await deps.requests.file_role_change(
        requester_id=user_id,
        guid=target.guid,
        role=role,
        justification=justification,
        response_url=response_url,
        group_guids=group_guids or (),
    )
    if isinstance(outcome, Filed):
        log.info(
            "role change %s filed (from interaction %s)", outcome.request.id, request_id_var.get()
        )
        return  # the outbox posts the card and confirms to the requester
    if isinstance(outcome, Duplicate):
        permalink = await deps.notifier.card_permalink(outcome.existing)
        message = duplicate_request_message(outcome.existing, card_permalink=permalink)
    else:
        message = file_problem_message(outcome.problem, username=target.username)
    await respond.privately(
        deps.client, user_id=user_id, message=message, response_url=response_url
    )
