"""`/connect-user` end to end: signed slash commands through the real HTTP route."""

from __future__ import annotations

import json
import time

import pytest

from bot.slack.ui import ids
from bot.slack.ui.search import search_error_message, search_failure_message
from bot.slack.ui.values import decode_person_value
from bot.workflow.outcomes import SearchProblem
from tests.support.blockkit import assert_valid_message
from tests.support.bot_under_test import (
    OUTSIDER,
    REQUESTER,
    BotUnderTest,
    make_settings,
    response_text,
    start_bot,
)
from tests.support.slack_requests import sign, slack_escape, slash_command_body


async def search(bot: BotUnderTest, text: str, *, user_id: str = REQUESTER) -> dict:
    response, response_url = await bot.command(text, user_id=user_id)
    assert response.status_code == 200
    await bot.settle()
    replies = await bot.slack.wait_for_response(response_url, count=1)
    assert len(replies) == 1, replies
    message = replies[0]
    assert message["response_type"] == "ephemeral"
    assert_valid_message(message)
    return message


def buttons(message: dict) -> list[dict]:
    return [
        element
        for block in message["blocks"]
        for element in ([block["accessory"]] if "accessory" in block else block.get("elements", []))
        if element.get("type") == "button"
    ]


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "frobnicate", "search", "search   "])
async def test_usage_for_help_unknown_and_empty(bot: BotUnderTest, text: str) -> None:
    message = await search(bot, text)
    assert "/connect-user search" in response_text(message)
    assert bot.connect.count(path="/__api__/v1/users/remote") == 0


async def test_search_shows_accounts_and_request_buttons(bot: BotUnderTest) -> None:
    message = await search(bot, "search julie")
    text = response_text(message)
    assert "julie1" in text and "julie2" in text
    assert "julie2@example.com" in text
    julie1_guid = bot.connect.get_local_user("julie1")["guid"]
    assert julie1_guid in text  # has an account: the guid is shown
    found = [b for b in buttons(message) if b["action_id"] == ids.ACTION_REQUEST_ACCOUNT]
    assert len(found) == 1, "only the person without an account can be requested"
    [change] = [b for b in buttons(message) if b["action_id"] == ids.ACTION_CHANGE_ROLE]
    assert change["value"] == julie1_guid, "an account's role can be changed instead"
    person = decode_person_value(found[0]["value"])
    assert person is not None and person.username == "julie2"
    # No ticket reaches Slack: the request is filed with a fresh one read from Connect.
    assert all(ticket not in json.dumps(message) for ticket in bot.connect.issued_tickets)
    assert found[0]["action_id"] == ids.ACTION_REQUEST_ACCOUNT
    call = bot.connect.calls_for(path="/__api__/v1/users/remote")[0]
    assert call.query["prefix"] == "julie"
    assert 1 <= int(call.query["limit"]) <= 500


async def test_ack_does_not_wait_for_connect(bot: BotUnderTest) -> None:
    bot.connect.latency = 1.5
    started = time.perf_counter()
    response, response_url = await bot.command("search julie")
    acked_after = time.perf_counter() - started
    assert response.status_code == 200
    assert acked_after < 1.0, f"ack took {acked_after:.2f}s: it waited for Connect"
    await bot.settle()
    assert "julie2" in response_text((await bot.slack.wait_for_response(response_url))[0])


@pytest.mark.parametrize(
    "typed", ["a b", "a & b", "x/y", "50%", "#tag", "c++", "k=v", "José", "山田", "<b>"]
)
async def test_prefix_reaches_connect_exactly(bot: BotUnderTest, typed: str) -> None:
    # Slack HTML-escapes &, < and > in command text; the bot must undo exactly that.
    await search(bot, "search " + slack_escape(typed))
    call = bot.connect.calls_for(path="/__api__/v1/users/remote")[-1]
    assert call.query["prefix"] == typed


async def test_no_matches(bot: BotUnderTest) -> None:
    message = await search(bot, "search zzz")
    assert "zzz" in response_text(message)
    assert not buttons(message)


async def test_more_matches_than_fit(bot: BotUnderTest) -> None:
    for n in range(120):
        bot.connect.add_directory_user(f"sam{n:03d}", "Sam", f"Number {n}", f"sam{n}@example.com")
    message = await search(bot, "search sam")
    shown = len(buttons(message))
    assert 10 <= shown < 120
    assert "more" in response_text(message).lower()


@pytest.mark.parametrize(
    ("switch", "expected"),
    [
        ({"remote_search_error_code": 83}, SearchProblem.TOO_MANY_RESULTS),
        ({"outage": "refuse"}, SearchProblem.CONNECT_UNAVAILABLE),
        ({"outage": "http_503"}, SearchProblem.CONNECT_UNAVAILABLE),
        ({"malformed": True}, SearchProblem.CONNECT_GARBAGE),
        ({"missing_fields": True}, SearchProblem.CONNECT_GARBAGE),
        ({"latency": 5.0}, SearchProblem.CONNECT_UNAVAILABLE),
    ],
)
async def test_connect_problems_each_get_their_message(
    bot: BotUnderTest, switch: dict, expected: SearchProblem
) -> None:
    for name, value in switch.items():
        setattr(bot.connect, name, value)
    message = await search(bot, "search julie")
    assert message["text"] == search_failure_message(expected, "julie")["text"]


async def test_a_refused_remote_search_falls_back_to_accounts(bot: BotUnderTest) -> None:
    # Connect's flags said nothing (an older server) but it answers that its provider cannot.
    bot.connect.remote_search_error_code = 132
    message = await search(bot, "search julie")
    text = response_text(message)
    assert "julie1" in text and "julie2" not in text
    assert "first log in" in text
    assert bot.connect.calls_for("GET", "/__api__/v1/users")[-1].query["prefix"] == "julie"


async def test_bad_api_key_is_a_configuration_message(bot: BotUnderTest) -> None:
    bot.connect.fail_next("GET", 401, code=24, times=10)
    message = await search(bot, "search julie")
    assert message["text"] == search_failure_message(SearchProblem.CONFIGURATION, "julie")["text"]


@pytest.mark.parametrize(
    "profile",
    [{"is_restricted": True}, {"is_ultra_restricted": True}, {"team_id": "TOTHERORG"}],
)
async def test_guests_and_other_organisations_may_not_search(
    bot: BotUnderTest, profile: dict
) -> None:
    bot.slack.add_user("UGUEST", **profile)
    message = await search(bot, "search julie", user_id="UGUEST")
    assert "julie2" not in response_text(message)
    assert bot.connect.count(path="/__api__/v1/users/remote") == 0


async def test_search_channel_limits_who_may_search(fake_slack, fake_connect, database_url) -> None:
    fake_slack.add_channel("CSEARCHERS", members=[REQUESTER])
    settings = make_settings(
        fake_slack, fake_connect, database_url, slack_search_channel="CSEARCHERS"
    )
    running = await start_bot(settings, fake_slack, fake_connect)
    try:
        allowed = await search(running, "search julie", user_id=REQUESTER)
        assert "julie2" in response_text(allowed)
        refused = await search(running, "search julie", user_id=OUTSIDER)
        assert "julie2" not in response_text(refused)
        assert "CSEARCHERS" in response_text(refused)
    finally:
        await running.stop()


async def test_failure_after_ack_still_reaches_the_user(bot: BotUnderTest, monkeypatch) -> None:
    async def explode(prefix: str):
        raise RuntimeError("boom")

    monkeypatch.setattr(bot.runtime.requests, "search", explode)
    message = await search(bot, "search julie")
    assert message["text"] == search_error_message("")["text"]


async def test_bad_signature_is_refused(bot: BotUnderTest) -> None:
    body = slash_command_body(text="search julie", response_url=bot.slack.new_response_url())
    headers = sign(body, "not-the-secret")
    response = await bot.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert bot.connect.count(path="/__api__/v1/users/remote") == 0


async def test_stale_timestamp_is_refused(bot: BotUnderTest) -> None:
    body = slash_command_body(text="search julie", response_url=bot.slack.new_response_url())
    headers = sign(body, bot.secret, timestamp=int(time.time()) - 600)
    response = await bot.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401


async def test_signature_over_a_modified_body_is_refused(bot: BotUnderTest) -> None:
    body = slash_command_body(text="search julie", response_url=bot.slack.new_response_url())
    headers = sign(body, bot.secret)
    response = await bot.http.post(
        "/slack/events", content=body.replace("julie", "julia"), headers=headers
    )
    assert response.status_code == 401


async def test_missing_signature_is_refused(bot: BotUnderTest) -> None:
    body = slash_command_body(text="search julie", response_url=bot.slack.new_response_url())
    response = await bot.http.post(
        "/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401


async def test_oversized_and_wrong_content_type_are_refused_unread(bot: BotUnderTest) -> None:
    big = "text=" + "a" * 300_000
    response = await bot.post(big)
    assert response.status_code == 413
    response = await bot.http.post(
        "/slack/events", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


async def test_healthz(bot: BotUnderTest) -> None:
    response = await bot.http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_healthz_reports_an_unreachable_store(bot: BotUnderTest, monkeypatch) -> None:
    async def unreachable() -> None:
        raise OSError("database is gone")

    monkeypatch.setattr(bot.runtime.store, "ping", unreachable)
    response = await bot.http.get("/healthz")
    assert response.status_code == 503
