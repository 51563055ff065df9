"""`/connect-user`: search the directory, ask for your own account, list what waits or what
became of your requests, show Connect's licence seats, or show how to use the command."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.logs import request_id_var
from bot.slack import respond
from bot.slack.command import (
    GroupSearch,
    Help,
    Lock,
    Pending,
    RequestMany,
    RequestOwn,
    Search,
    Seats,
    Status,
    parse_command,
)
from bot.slack.interactions import Click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.own_request import open_own_request
from bot.slack.ui.batch_request import resolution_message
from bot.slack.ui.groups import group_results_message
from bot.slack.ui.kit import Message
from bot.slack.ui.lists import (
    PENDING_LIST_LIMIT,
    STATUS_LIST_LIMIT,
    pending_message,
    status_message,
)
from bot.slack.ui.messages import (
    duplicate_request_message,
    requester_confirmation,
    usage_message,
)
from bot.slack.ui.refusals import file_problem_message, pending_refusal, refusal_message
from bot.slack.ui.search import (
    no_results_message,
    search_error_message,
    search_failure_message,
    search_results_message,
)
from bot.slack.ui.seats import seats_message, seats_refusal
from bot.workflow.outcomes import Duplicate, Filed, Refused


def listener(deps: ListenerDeps) -> Listener:
    async def connect_user(ack: AsyncAck, command: dict[str, Any]) -> None:
        # Ack first and with nothing: Slack allows 3 s and Connect may be slower than that.
        await ack()
        response_url = command.get("response_url")

        # Parsing is pure and cheap: done here too so a failure is reported in the command's terms.
        parsed = parse_command(command.get("text") or "")
        if isinstance(parsed, RequestOwn):
            # A modal, opened on this path: the command's trigger_id lasts 3 seconds.
            click = Click(
                value="",
                user_id=command["user_id"],
                response_url=response_url,
                channel=command.get("channel_id"),
            )
            await open_own_request(deps.own_request, click, command.get("trigger_id"), deps.client)
            return
        if isinstance(parsed, Search | GroupSearch):
            failure = search_error_message("")
        else:
            failure = refusal_message(
                "Sorry, something went wrong on my side. Please try again in a moment."
            )

        async def report_failure(_: BaseException) -> None:
            await respond.via_response_url(response_url, failure)

        deps.supervisor.spawn(
            run_command(deps, command), name="slash-command", on_error=report_failure
        )

    return connect_user


async def run_command(deps: ListenerDeps, command: dict[str, Any]) -> None:
    message = await command_reply(deps, command)
    # The response_url can fail (expired, or Slack refused it): fall back to an ephemeral message
    # in the channel, then to a DM, so the person is never left in silence.
    await respond.privately(
        deps.client,
        user_id=command["user_id"],
        message=message,
        response_url=command.get("response_url"),
        channel=command.get("channel_id"),
    )


async def command_reply(deps: ListenerDeps, command: dict[str, Any]) -> Message:
    parsed = parse_command(command.get("text") or "")
    if isinstance(parsed, Help):
        return usage_message(parsed.problem, parsed.typed)
    if isinstance(parsed, Pending):
        return await pending_reply(deps, command["user_id"])
    if isinstance(parsed, Status):
        return await status_reply(deps, command["user_id"])
    if isinstance(parsed, Seats):
        return await seats_reply(deps, command["user_id"])
    if isinstance(parsed, GroupSearch):
        return await group_search_reply(deps, command["user_id"], parsed.prefix)
    if isinstance(parsed, RequestMany):
        return await request_many_reply(deps, command["user_id"], parsed.entries)
    if isinstance(parsed, Lock):
        return await lock_reply(deps, command["user_id"], parsed)
    assert isinstance(parsed, Search), parsed  # RequestOwn opens a modal instead
    refusal = await deps.people.search_refusal(command["user_id"])
    if refusal is not None:
        return refusal_message(refusal)
    outcome = await deps.requests.search(parsed.prefix)
    if outcome.problem is not None:
        return search_failure_message(outcome.problem, parsed.prefix)
    if outcome.page is not None and outcome.page.entries:
        return search_results_message(
            parsed.prefix,
            outcome.page,
            connect_url=deps.connect_url,
            correlation_id=request_id_var.get(),
            accounts_only=outcome.accounts_only,
            role_changes=outcome.role_changes,
            group_joins=outcome.group_joins,
        )
    return no_results_message(parsed.prefix, accounts_only=outcome.accounts_only)


async def request_many_reply(deps: ListenerDeps, user_id: str, entries: tuple[str, ...]) -> Message:
    """The names, each as it resolved exactly; a button opens the form for the ready ones."""
    # What it shows is directory data: the same gate as a search.
    refusal = await deps.people.search_refusal(user_id)
    if refusal is not None:
        return refusal_message(refusal)
    return resolution_message(await deps.batches.resolve(entries))


async def lock_reply(deps: ListenerDeps, user_id: str, parsed: Lock) -> Message:
    """File a lock or unlock request: the account's details reach the approvers, so the same
    gate as a search; the answer is the confirmation (the outbox posts the card)."""
    refusal = await deps.people.search_refusal(user_id)
    if refusal is not None:
        return refusal_message(refusal)
    outcome = await deps.requests.file_lock(
        requester_id=user_id,
        lock=parsed.lock,
        username=parsed.username,
        justification=parsed.justification,
    )
    if isinstance(outcome, Filed):
        return requester_confirmation(outcome.request, card_permalink=None)
    if isinstance(outcome, Duplicate):
        permalink = await deps.notifier.card_permalink(outcome.existing)
        return duplicate_request_message(outcome.existing, card_permalink=permalink)
    return file_problem_message(outcome.problem, username=parsed.username)


async def group_search_reply(deps: ListenerDeps, user_id: str, prefix: str) -> Message:
    # Directory groups are directory data: the same gate as a search for people.
    refusal = await deps.people.search_refusal(user_id)
    if refusal is not None:
        return refusal_message(refusal)
    outcome = await deps.requests.group_search(prefix)
    if outcome.problem is not None:
        return search_failure_message(outcome.problem, prefix)
    assert outcome.page is not None
    return group_results_message(prefix, outcome.page)


async def pending_reply(deps: ListenerDeps, user_id: str) -> Message:
    outcome = await deps.requests.pending_requests(user_id, limit=PENDING_LIST_LIMIT)
    if isinstance(outcome, Refused):
        return pending_refusal(outcome.reason, approver_channel=deps.approver_channel)
    return pending_message(
        outcome.requests,
        total=outcome.total,
        permalinks=await deps.notifier.card_permalinks(outcome.requests),
    )


async def seats_reply(deps: ListenerDeps, user_id: str) -> Message:
    outcome = await deps.seat_report.for_approver(user_id)
    if isinstance(outcome, Refused):
        return seats_refusal(outcome.reason, approver_channel=deps.approver_channel)
    return seats_message(outcome)


async def status_reply(deps: ListenerDeps, user_id: str) -> Message:
    mine = await deps.requests.my_requests(user_id, limit=STATUS_LIST_LIMIT)
    return status_message(
        mine.requests,
        total=mine.total,
        permalinks=await deps.notifier.card_permalinks(mine.requests),
    )
