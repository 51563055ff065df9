"""The Workflow Builder step "Request a Posit Connect account", through signed events against the
fake Slack: the person is found by their Slack email, the request is an ordinary one, and the
step is completed — with the bot's own token — when the request is decided: success with the
account, an error when it is denied; at once when nothing can be filed or the person has an
account already; a run that ended meanwhile is recorded as a normal outcome."""

from __future__ import annotations

import json

from bot.slack.listeners.functions import CALLBACK_ID
from bot.slack.ui import ids
from bot.workflow.states import RequestState
from tests.support.bot_under_test import APPROVER, REQUESTER, BotUnderTest
from tests.support.flows import PUT, approve
from tests.support.slack_requests import event_callback_body

ANA = "UANALIMA1"
BOT_TOKEN_PREFIX = "xoxb-"


async def run_step(bot: BotUnderTest, *, execution_id: str | None = None, **inputs: str) -> str:
    """Slack reaches the step in a workflow run: the event, once; returns the execution id."""
    values = {"user_id": ANA, "requester_id": REQUESTER, "justification": "Joins analytics."}
    values.update(inputs)
    event = bot.slack.function_executed_event(CALLBACK_ID, values, execution_id=execution_id)
    response = await bot.post(event_callback_body(event))
    assert response.status_code == 200
    await bot.settle()
    return event["function_execution_id"]


def completions(bot: BotUnderTest) -> list:
    return [
        c
        for c in bot.slack.calls
        if c.method in ("functions.completeSuccess", "functions.completeError")
    ]


def used_the_bots_own_token(bot: BotUnderTest) -> bool:
    return all((c.token or "").startswith(BOT_TOKEN_PREFIX) for c in completions(bot))


async def test_the_step_files_a_request_and_ends_when_it_is_approved(bot: BotUnderTest) -> None:
    bot.slack.add_user(ANA, email="ana.lima@example.com", real_name="Ana Lima")
    bot.connect.add_directory_user("ana.lima", "Ana", "Lima", "ana.lima@example.com")
    execution = await run_step(bot, role="Viewer")
    [request] = await bot.runtime.store.list_requests(requester_id=REQUESTER)
    assert request.username == "ana.lima" and request.workflow_execution_id == execution
    assert request.subject_id == ANA
    assert completions(bot) == [], "the step runs until the request is decided"
    assert bot.slack.executions[execution] == "running"

    # Slack delivers the event again: the same request, not a second one.
    await run_step(bot, execution_id=execution)
    assert len(await bot.runtime.store.list_requests(requester_id=REQUESTER)) == 1

    await approve(bot, request.id, APPROVER)
    await bot.settle()
    [done] = completions(bot)
    assert done.method == "functions.completeSuccess" and done.ok
    outputs = done.args["outputs"]
    if isinstance(outputs, str):
        outputs = json.loads(outputs)
    guid = bot.connect.get_local_user("ana.lima")["guid"]
    assert outputs == {"request_id": request.id, "outcome": "approved", "connect_guid": guid}
    assert bot.slack.executions[execution] == "completed"
    assert used_the_bots_own_token(bot)
    assert (await bot.runtime.store.get(request.id)).workflow_result == "completed"
    assert bot.connect.count(**PUT) == 1


async def test_a_denial_ends_the_step_in_error(bot: BotUnderTest) -> None:
    bot.slack.add_user(ANA, email="ana.lima@example.com", real_name="Ana Lima")
    bot.connect.add_directory_user("ana.lima", "Ana", "Lima", "ana.lima@example.com")
    execution = await run_step(bot)
    [request] = await bot.runtime.store.list_requests(requester_id=REQUESTER)
    await bot.click(ids.ACTION_DENY, request.id, user_id=APPROVER)
    await bot.settle()
    view = bot.slack.calls_to("views.open")[-1].args["view"]
    await bot.submit(
        ids.VIEW_DENY_REASON,
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"value": "Not this team."}}},
        view["private_metadata"],
        user_id=APPROVER,
    )
    await bot.settle()
    [done] = completions(bot)
    assert done.method == "functions.completeError"
    assert "denied: Not this team." in done.args["error"]
    assert bot.slack.executions[execution] == "failed"
    assert used_the_bots_own_token(bot)


async def test_what_cannot_be_filed_ends_the_step_at_once(bot: BotUnderTest) -> None:
    bot.slack.add_user(ANA, email="nobody@example.com", real_name="No Body")
    execution = await run_step(bot)
    [done] = completions(bot)
    assert done.method == "functions.completeError"
    assert "No one in the directory has the email" in done.args["error"]
    assert bot.slack.executions[execution] == "failed"
    assert await bot.runtime.store.list_requests(requester_id=REQUESTER) == []


async def test_an_account_there_already_ends_the_step_in_success(bot: BotUnderTest) -> None:
    bot.slack.add_user(ANA, email="ana.lima@example.com", real_name="Ana Lima")
    guid = bot.connect.add_local_user("ana.lima", "Ana", "Lima", "ana.lima@example.com")
    execution = await run_step(bot)
    [done] = completions(bot)
    assert done.method == "functions.completeSuccess"
    outputs = done.args["outputs"]
    if isinstance(outputs, str):
        outputs = json.loads(outputs)
    assert outputs["outcome"] == "has_account" and outputs["connect_guid"] == guid
    assert bot.slack.executions[execution] == "completed"


async def test_a_run_gone_before_the_decision_is_a_normal_outcome(bot: BotUnderTest) -> None:
    bot.slack.add_user(ANA, email="ana.lima@example.com", real_name="Ana Lima")
    bot.connect.add_directory_user("ana.lima", "Ana", "Lima", "ana.lima@example.com")
    execution = await run_step(bot)
    [request] = await bot.runtime.store.list_requests(requester_id=REQUESTER)
    bot.slack.ended_executions.add(execution)  # the workflow run was stopped meanwhile
    await approve(bot, request.id, APPROVER)
    await bot.settle()
    [done] = completions(bot)
    assert done.error == "execution_not_in_running_state"
    stored = await bot.runtime.store.get(request.id)
    assert stored.state is RequestState.APPROVED and stored.workflow_result == "gone"
    # Delivered, not retried: nothing left owed for it.
    await bot.settle()
    assert len(completions(bot)) == 1


async def test_a_retry_racing_the_first_delivery_does_not_end_the_step(
    bot: BotUnderTest, monkeypatch: object
) -> None:
    """The retried event looked for the run's request before the first delivery had filed it,
    and finds it only as "waiting already": it is the same run's, so the step keeps running."""
    bot.slack.add_user(ANA, email="ana.lima@example.com", real_name="Ana Lima")
    bot.connect.add_directory_user("ana.lima", "Ana", "Lima", "ana.lima@example.com")
    execution = await run_step(bot)
    store = bot.runtime.store

    async def not_yet(execution_id: str) -> None:
        return None

    monkeypatch.setattr(store, "find_by_workflow", not_yet)  # type: ignore[attr-defined]
    await run_step(bot, execution_id=execution)
    assert completions(bot) == [], "the step is still running"
    assert bot.slack.executions[execution] == "running"


async def test_the_card_says_a_workflow_step_named_who_asked(bot: BotUnderTest) -> None:
    bot.slack.add_user(ANA, email="ana.lima@example.com", real_name="Ana Lima")
    bot.connect.add_directory_user("ana.lima", "Ana", "Lima", "ana.lima@example.com")
    await run_step(bot)
    card = [
        c.args for c in bot.slack.calls_to("chat.postMessage") if c.args["channel"] == "CAPPROVERS"
    ][-1]
    text = json.dumps(card["blocks"])
    assert "Workflow Builder step" in text and f"<@{REQUESTER}>" in text
