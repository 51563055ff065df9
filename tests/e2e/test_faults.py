"""Faults survived: each gives a clear message, loses nothing, and leaves the bot healthy."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import OperationalError

from bot.slack.ui import ids
from bot.workflow.states import RequestState
from tests.support.bot_under_test import APPROVER, REQUESTER, BotUnderTest, response_text
from tests.support.flows import (
    PUT,
    approve,
    dms_to,
    file_request,
    open_request_form,
    request_button,
    submit_request,
)
from tests.support.log_guard import CapturingHandler
from tests.support.slack_requests import block_actions_body


async def healthy(bot: BotUnderTest) -> bool:
    return (await bot.http.get("/healthz")).status_code == 200


async def test_connect_rate_limit_on_search_is_waited_out(bot: BotUnderTest) -> None:
    bot.connect.fail_next("GET", 429, times=1, retry_after=0.2)
    _, response_url = await bot.command("search julie")
    await bot.settle()
    assert "julie2" in response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert bot.connect.count(path="/__api__/v1/users/remote") == 2
    assert await healthy(bot)


async def test_connect_timeout_on_put_is_settled_not_repeated(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    bot.connect.put_mode = "hang"
    response_url = await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING and "did not answer in time" in request.last_error
    assert "did not answer in time" in response_text(
        (await bot.slack.wait_for_response(response_url))[-1]
    )
    assert bot.connect.count(**PUT) == 1
    assert await healthy(bot)


async def test_slack_rate_limits_on_interactive_calls_are_waited_out(bot: BotUnderTest) -> None:
    bot.slack.fail("views.open", status=429, retry_after=0)
    view, _ = await open_request_form(bot, "julie2")
    assert view["callback_id"] == ids.VIEW_JUSTIFICATION
    await submit_request(bot, view, "needs it")
    request = await bot.runtime.store.find_active("julie2")
    bot.slack.fail("conversations.members", status=429, retry_after=0)
    await approve(bot, request.id, user_id=APPROVER)
    assert (await bot.runtime.store.get(request.id)).state is RequestState.APPROVED


async def test_expired_response_url_falls_back_to_a_dm(bot: BotUnderTest) -> None:
    view, click_url = await open_request_form(bot, "julie2")
    bot.slack.set_response_url_status(click_url, 404)
    await submit_request(bot, view, "needs it")
    confirmation = dms_to(bot, REQUESTER)
    assert len(confirmation) == 1 and "sent to the approvers" in response_text(confirmation[0])


async def test_slack_5xx_on_card_update_then_recovery(bot: BotUnderTest) -> None:
    bot.runtime.notifier.backoff_base = 0.05
    request_id = await file_request(bot)
    bot.slack.fail("chat.update", status=502, times=2)
    await approve(bot, request_id)
    updates = [c for c in bot.slack.calls_to("chat.update") if c.ok]
    assert len(updates) >= 1 and "Approved" in str(updates[-1].args)
    assert len(dms_to(bot, REQUESTER)) == 1


async def test_process_death_after_storing_a_request(bot: BotUnderTest, settings) -> None:
    """The request is stored and its card owed, but the process dies before posting it."""
    from tests.support.bot_under_test import start_bot

    value = await request_button(bot, "julie2")
    assert value
    bot.slack.fail("chat.postMessage", status=500, times=None)
    view, _ = await open_request_form(bot, "julie2")
    await bot.submit(
        ids.VIEW_JUSTIFICATION,
        {ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "needs it"}},
        view["private_metadata"],
        user_id=REQUESTER,
    )
    await bot.runtime.supervisor.join()
    request = await bot.runtime.store.find_active("julie2")
    assert request is not None and request.card_ts is None
    await bot.stop()
    bot.slack.clear_faults()
    restarted = await start_bot(settings, bot.slack, bot.connect, instance_id="test-2")
    try:
        from bot.store.tables import outbox

        async with restarted.runtime.engine.begin() as conn:
            await conn.execute(outbox.update().values(next_attempt_at=None))
        await restarted.settle()
        assert (await restarted.runtime.store.get(request.id)).card_ts
        await approve(restarted, request.id)
        assert (await restarted.runtime.store.get(request.id)).state is RequestState.APPROVED
    finally:
        await restarted.stop()


# -- a click whose listener fails after ack() still gets an answer ------------------------------


def failures_logged(logs: CapturingHandler, since: int) -> list[str]:
    return [
        text
        for name, text in logs.texts[since:]
        if name.startswith("bot") and json.loads(text)["level"] in ("WARNING", "ERROR")
    ]


async def test_deny_when_the_database_fails_tells_the_clicker(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch, no_secrets_in_logs: CapturingHandler
) -> None:
    request_id = await file_request(bot)

    async def broken_get(*_: object, **__: object) -> None:
        raise OperationalError("SELECT …", None, Exception("database is locked"))

    monkeypatch.setattr(bot.runtime.store, "get", broken_get)
    since = len(no_secrets_in_logs.texts)
    opened = bot.slack.count("views.open")
    _, response_url = await bot.click(ids.ACTION_DENY, request_id, user_id=APPROVER)
    answer = (await bot.slack.wait_for_response(response_url))[-1]
    assert "went wrong" in response_text(answer) and "press Deny again" in response_text(answer)
    assert bot.slack.count("views.open") == opened
    logged = failures_logged(no_secrets_in_logs, since)
    assert len(logged) == 1 and "OperationalError" in logged[0], logged


async def test_request_account_when_slack_cannot_be_reached_tells_the_clicker(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch, no_secrets_in_logs: CapturingHandler
) -> None:
    value = await request_button(bot, "julie2")

    async def unreachable(*_: object, **__: object) -> None:
        raise aiohttp.ServerDisconnectedError()

    monkeypatch.setattr(AsyncWebClient, "views_open", unreachable)
    since = len(no_secrets_in_logs.texts)
    _, response_url = await bot.click(
        ids.ACTION_REQUEST_ACCOUNT, value, user_id=REQUESTER, ephemeral=True
    )
    answer = (await bot.slack.wait_for_response(response_url))[-1]
    assert "press the button again" in response_text(answer)
    logged = failures_logged(no_secrets_in_logs, since)
    assert len(logged) == 1 and "ServerDisconnectedError" in logged[0], logged


@pytest.mark.parametrize("action_id", [ids.ACTION_DENY, ids.ACTION_REQUEST_ACCOUNT])
async def test_a_click_without_a_trigger_id_is_answered(
    bot: BotUnderTest, action_id: str, no_secrets_in_logs: CapturingHandler
) -> None:
    """Slack always sends one; a click without it cannot open a form, and still gets an answer."""
    if action_id == ids.ACTION_DENY:
        value, user_id = await file_request(bot), APPROVER
    else:
        value, user_id = await request_button(bot, "julie2"), REQUESTER
    response_url = bot.slack.new_response_url()
    body = block_actions_body(
        action_id=action_id, value=value, user_id=user_id, response_url=response_url
    )
    payload = json.loads(dict(parse_qsl(body))["payload"])
    del payload["trigger_id"]
    since = len(no_secrets_in_logs.texts)
    opened = bot.slack.count("views.open")
    response = await bot.post(urlencode({"payload": json.dumps(payload)}))
    assert response.status_code == 200
    answer = (await bot.slack.wait_for_response(response_url))[-1]
    assert "again" in response_text(answer)
    assert bot.slack.count("views.open") == opened
    assert len(failures_logged(no_secrets_in_logs, since)) == 1
