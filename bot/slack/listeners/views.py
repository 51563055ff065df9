"""Modal submissions: the justification for a request, the reason for a denial."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.logs import request_id_var
from bot.slack import respond
from bot.slack.interactions import view_input
from bot.slack.listeners import ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.messages import duplicate_request_message
from bot.slack.ui.modals import outdated_form_view
from bot.slack.ui.refusals import (
    approval_refusal,
    decision_refusal,
    file_problem_message,
    refusal_message,
)
from bot.slack.values import decode_justification_metadata, is_request_id
from bot.workflow.outcomes import Duplicate, Filed, NotFiled, Refusal, Refused

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.view(ids.VIEW_JUSTIFICATION)
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
        await ack()
        user_id = body["user"]["id"]
        username = person_value.username

        async def report_failure(_: BaseException) -> None:
            await respond.privately(
                deps.notifier.client,
                user_id=user_id,
                message=refusal_message(
                    "Something went wrong while filing your request. Please try again."
                ),
                response_url=response_url,
            )

        deps.supervisor.spawn(
            file_request(deps, user_id, username, justification, response_url),
            name="file-request",
            on_error=report_failure,
        )

    @app.view(ids.VIEW_DENY_REASON)
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

    @app.view(re.compile(r".*"))
    async def unknown_view(ack: AsyncAck) -> None:
        # A form from an older version of the bot, or a forged one: say so in the form itself.
        await ack(response_action="update", view=outdated_form_view())


async def _tell(deps: ListenerDeps, user_id: str, message: dict[str, Any]) -> None:
    await respond.privately(
        deps.notifier.client, user_id=user_id, message=message, channel=deps.approver_channel
    )


async def deny(deps: ListenerDeps, request_id: str, user_id: str, reason: str) -> None:
    outcome = await deps.requests.deny(request_id, user_id, reason)
    if isinstance(outcome, Refused):
        await _tell(deps, user_id, decision_refusal(outcome))


async def file_request(
    deps: ListenerDeps, user_id: str, username: str, justification: str, response_url: str | None
) -> None:
    outcome = await deps.requests.file_request(
        requester_id=user_id,
        username=username,
        justification=justification,
        response_url=response_url,
    )
    if isinstance(outcome, Filed):
        # From here on the request's own id is the one its logs carry; this line links the two.
        log.info("request %s filed (from interaction %s)", outcome.request.id, request_id_var.get())
        return  # the outbox posts the card and confirms to the requester
    if isinstance(outcome, Duplicate):
        permalink = await deps.notifier.card_permalink(outcome.existing)
        message = duplicate_request_message(outcome.existing, card_permalink=permalink)
    elif isinstance(outcome, NotFiled):
        message = file_problem_message(outcome.problem, username=username)
    await respond.privately(
        deps.notifier.client, user_id=user_id, message=message, response_url=response_url
    )
