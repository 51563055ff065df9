"""The Workflow Builder step "Request a Posit Connect account": file a request for the person
`user_id` (found in the directory by their Slack email), asked by `requester_id` (who ran the
workflow: the event does not say). The step stays running until the request is decided; the
notifier completes it then (the outbox's COMPLETE_WORKFLOW), with the bot's own token. What
cannot be filed ends the step in error at once; an account the person has already, in success.

The event's workflow token is never used or kept: it expires long before an approver decides."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.workflow_step import step_problem_text

log = logging.getLogger(__name__)

CALLBACK_ID = "request_connect_account"
GONE = "execution_not_in_running_state"


def listener(deps: ListenerDeps) -> Listener:
    async def request_connect_account(event: dict[str, Any]) -> None:
        # Bolt has acknowledged the event; the rest is supervised work.
        deps.supervisor.spawn(run(deps, event), name="workflow-step")

    return request_connect_account


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


async def run(deps: ListenerDeps, event: dict[str, Any]) -> None:
    execution_id = _text(event.get("function_execution_id"))
    inputs = event.get("inputs") or {}
    person_id, requester_id = _text(inputs.get("user_id")), _text(inputs.get("requester_id"))
    justification, role = _text(inputs.get("justification")), _text(inputs.get("role")) or None
    if not execution_id:
        log.warning("a workflow step came without its execution id")
        return
    if not (person_id and requester_id):
        await fail(deps, execution_id, "The step needs the person and who ran the workflow.")
        return
    refusal = await deps.people.search_refusal(requester_id)
    if refusal is not None:  # the same gate as filing from Slack: directory data
        await fail(deps, execution_id, refusal)
        return
    if role is not None:
        role = role.lower()
    started = await deps.workflow_runs.start(
        execution_id=execution_id,
        person_id=person_id,
        requester_id=requester_id,
        justification=justification,
        role=role,
    )
    if started.account is not None:
        await complete(
            deps,
            execution_id,
            {
                "request_id": "",
                "outcome": "has_account",
                "connect_guid": started.account.guid or "",
            },
        )
    elif started.problem is not None:
        await fail(deps, execution_id, step_problem_text(started.problem, started.file_problem))
    elif started.request is not None and started.request.state.is_final:
        # A retried event for a request decided meanwhile: its completion is owed already.
        log.info("workflow step for request %s: decided already", started.request.id)


async def complete(deps: ListenerDeps, execution_id: str, outputs: dict[str, str]) -> None:
    try:
        await deps.client.functions_completeSuccess(
            function_execution_id=execution_id, outputs=outputs
        )
    except SlackApiError as exc:
        _log_error(exc)


async def fail(deps: ListenerDeps, execution_id: str, error: str) -> None:
    try:
        await deps.client.functions_completeError(function_execution_id=execution_id, error=error)
    except SlackApiError as exc:
        _log_error(exc)


def _log_error(exc: SlackApiError) -> None:
    error = exc.response.get("error")
    if error == GONE:
        log.info("the workflow run had ended before its step could be completed")
    else:
        log.warning("completing a workflow step failed: %s", error)
