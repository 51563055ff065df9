"""Modal submissions: the justification for a request, the reason for a denial."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.logs import request_id_var
from bot.slack import blocks
from bot.slack.listeners import ListenerDeps
from bot.slack.listeners.actions import REQUEST_ID
from bot.slack.listeners.replies import decision_refusal, reply_or_ephemeral
from bot.workflow.outcomes import Duplicate, Filed, FileProblem, NotFiled, Refused

log = logging.getLogger(__name__)


def _input(view: dict[str, Any], block_id: str, action_id: str) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    return str((values.get(action_id) or {}).get("value") or "")


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.view(blocks.VIEW_JUSTIFICATION)
    async def justification_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        justification = _input(view, blocks.JUSTIFICATION_BLOCK, blocks.JUSTIFICATION_INPUT).strip()
        if not justification:
            await ack(
                response_action="errors",
                errors={blocks.JUSTIFICATION_BLOCK: "Please say why this person needs an account."},
            )
            return
        try:
            metadata = json.loads(view.get("private_metadata") or "")
            person_value = blocks.decode_person_value(metadata["v"])
            response_url = metadata.get("r")
        except (ValueError, KeyError, TypeError):
            person_value, response_url = None, None
        if person_value is None:
            await ack(
                response_action="errors",
                errors={
                    blocks.JUSTIFICATION_BLOCK: "This form is out of date. Close it, search again."
                },
            )
            return
        await ack()
        user_id = body["user"]["id"]
        username = person_value.username

        async def report_failure(_: BaseException) -> None:
            await reply_or_ephemeral(
                deps.notifier.client,
                response_url=response_url,
                channel=None,
                user_id=user_id,
                message=blocks.refusal_message(
                    "Something went wrong while filing your request. Please try again."
                ),
            )

        deps.supervisor.spawn(
            file_request(deps, user_id, username, justification, response_url),
            name="file-request",
            on_error=report_failure,
        )

    @app.view(blocks.VIEW_DENY_REASON)
    async def deny_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = _input(view, blocks.DENY_REASON_BLOCK, blocks.DENY_REASON_INPUT).strip()
        if not reason:
            await ack(
                response_action="errors",
                errors={blocks.DENY_REASON_BLOCK: "Please give the requester a reason."},
            )
            return
        request_id = str(view.get("private_metadata") or "")
        await ack()
        user_id = body["user"]["id"]
        if not REQUEST_ID.match(request_id):
            await _tell(deps, user_id, blocks.approval_refusal("not_found"))
            return

        async def report_failure(_: BaseException) -> None:
            await _tell(
                deps,
                user_id,
                blocks.refusal_message(
                    "Something went wrong while denying. The card shows the request's state."
                ),
            )

        deps.supervisor.spawn(
            deny(deps, request_id, user_id, reason), name="deny", on_error=report_failure
        )

    @app.view(re.compile(r".*"))
    async def unknown_view(ack: AsyncAck) -> None:
        # A form from an older version of the bot, or a forged one: say so in the form itself.
        await ack(response_action="update", view=blocks.outdated_form_view())


async def _tell(deps: ListenerDeps, user_id: str, message: dict[str, Any]) -> None:
    await reply_or_ephemeral(
        deps.notifier.client,
        response_url=None,
        channel=deps.approver_channel,
        user_id=user_id,
        message=message,
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
        message = blocks.duplicate_request_message(outcome.existing, card_permalink=permalink)
    elif isinstance(outcome, NotFiled):
        who = blocks.escape_mrkdwn(username)
        message = blocks.refusal_message(
            {
                FileProblem.EMPTY_JUSTIFICATION: "Please say why this person needs an account.",
                FileProblem.ALREADY_HAS_ACCOUNT: f"{who} already has a Connect account.",
                FileProblem.NOT_IN_DIRECTORY: f"{who} is no longer in the directory.",
                FileProblem.CANNOT_VERIFY: f"Connect could not confirm {who} in the directory "
                "just now, so nothing was filed. Please try again in a minute.",
            }[outcome.problem]
        )
    await reply_or_ephemeral(
        deps.notifier.client,
        response_url=response_url,
        channel=None,
        user_id=user_id,
        message=message,
    )
