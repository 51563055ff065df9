"""The justification form is submitted: file the request. The outbox then posts the card and
confirms to the requester; a duplicate or a person who cannot be requested is answered here."""

from __future__ import annotations

import asyncio
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
from bot.slack.ui.values import decode_justification_metadata
from bot.workflow.outcomes import Duplicate, Filed

log = logging.getLogger(__name__)

# The submission must be answered within 3 s; the role is checked against the roles offered
# for a form error when that is quick (usually from what the directory keeps), and always again
# when the request is filed.
ROLE_CHECK_SECONDS = 1.0
ROLE_ERROR = "That role cannot be asked for here. Please choose one of the roles offered."


async def role_problem(deps: ListenerDeps, role: str | None) -> str | None:
    """Why the role a form came back with cannot be asked for, if it cannot; None when it can
    or when that cannot be told in time (filing checks it again)."""
    if role is None:
        return None
    if role not in deps.requests.requestable_roles:
        return ROLE_ERROR
    try:
        offered = await asyncio.wait_for(deps.requests.roles_offered(), ROLE_CHECK_SECONDS)
    except TimeoutError:
        return None
    return None if role in offered else ROLE_ERROR


def listener(deps: ListenerDeps) -> Listener:
    async def justification_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        justification = view_input(view, ids.JUSTIFICATION_BLOCK, ids.JUSTIFICATION_INPUT).strip()
        if not justification:
            await ack(
                response_action="errors",
                errors={ids.JUSTIFICATION_BLOCK: "Please say why this person needs an account."},
            )
            return
        person_value, response_url = decode_justification_metadata(
            str(view.get("private_metadata") or "")
        )
        if person_value is None:
            await ack(
                response_action="errors",
                errors={
                    ids.JUSTIFICATION_BLOCK: "This form is out of date. Close it, search again."
                },
            )
            return
        # The role comes back from the requester's client: checked here for the form, and by
        # the workflow when the request is filed.
        role = view_selected(view, ids.ROLE_BLOCK, ids.ROLE_INPUT)
        problem = await role_problem(deps, role)
        if problem is not None:
            await ack(response_action="errors", errors={ids.ROLE_BLOCK: problem})
            return
        group_guids = view_selected_many(view, ids.GROUPS_BLOCK, ids.GROUPS_INPUT)
        await ack()
        user_id = body["user"]["id"]
        username = person_value.username

        deps.after_submit(
            user_id,
            response_url,
            file_request(
                deps,
                user_id,
                username,
                justification,
                response_url,
                role=role,
                group_guids=group_guids,
            ),
            name="file-request",
            failure="Something went wrong while filing your request. Please try again.",
        )

    return justification_submitted


async def file_request(
    deps: ListenerDeps,
    user_id: str,
    username: str,
    justification: str,
    response_url: str | None,
    *,
    role: str | None = None,
    group_guids: list[str] | None = None,
) -> None:
    # Filing shows the person's details to the approvers: the same gate as a search, checked
    # again now (the form may have been opened by someone who may no longer search, or forged).
    if await deps.refuse_unless_searcher(user_id, response_url):
        return
    outcome = await deps.requests.file_request(
        requester_id=user_id,
        username=username,
        justification=justification,
        role=role,
        response_url=response_url,
        group_guids=group_guids or (),
    )
    if isinstance(outcome, Filed):
        # From here on the request's own id is the one its logs carry; this line links the two.
        log.info("request %s filed (from interaction %s)", outcome.request.id, request_id_var.get())
        return  # the outbox posts the card and confirms to the requester
    if isinstance(outcome, Duplicate):
        permalink = await deps.notifier.card_permalink(outcome.existing)
        message = duplicate_request_message(outcome.existing, card_permalink=permalink)
    else:
        message = file_problem_message(outcome.problem, username=username)
    await respond.privately(
        deps.client, user_id=user_id, message=message, response_url=response_url
    )
