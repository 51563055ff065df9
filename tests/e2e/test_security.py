"""Secrets stay secret, logs are structured and correlated, bad input gets a clear answer."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.connect.client import ConnectClient
from bot.logs import bind_request_id, configure_logging
from bot.slack.ui import ids
from bot.workflow.models import Person, ProvisioningRequest
from bot.workflow.states import RequestState
from tests.support.bot_under_test import APPROVER, REQUESTER, BotUnderTest, response_text
from tests.support.flows import approve, file_request
from tests.support.log_guard import CapturingHandler, find_leaks


def test_the_log_guard_finds_a_leak() -> None:
    texts = [("bot.x", '{"message": "ticket is abc+def/ghi=="}'), ("bot.y", "fine")]
    assert find_leaks(texts, {"abc+def/ghi=="}) and not find_leaks(texts, {"zzzzzzzzzz"})


async def test_the_log_guard_sees_the_bots_records(
    bot: BotUnderTest, no_secrets_in_logs: CapturingHandler
) -> None:
    await approve(bot, await file_request(bot))
    names = {name for name, _ in no_secrets_in_logs.texts}
    assert any(name.startswith("bot.") for name in names), names


async def test_a_request_id_follows_the_request_from_command_to_dm(
    bot: BotUnderTest, no_secrets_in_logs: CapturingHandler
) -> None:
    request_id = await file_request(bot)
    await approve(bot, request_id)
    records = [
        json.loads(text) for name, text in no_secrets_in_logs.texts if name.startswith("bot.")
    ]
    filed = next(r for r in records if "from interaction" in r["message"])
    interaction = filed["request_id"]
    assert filed["message"].startswith(f"request {request_id} filed")
    assert f"from interaction {interaction}" in filed["message"]
    # Filing is logged while the interaction's id is current (that is the link); every line
    # after it carries the request's own id.
    decided = [
        r
        for r in records
        if r["message"].startswith(f"request {request_id} ") and " filed" not in r["message"]
    ]
    assert {"approved", "ended"} <= {word for r in decided for word in r["message"].split()}
    assert all(r.get("request_id") == request_id for r in decided)


def test_json_logs_are_one_object_per_line() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json", stream=stream)
        with bind_request_id("0123456789abcdef"):
            logging.getLogger("bot.test").info("hello %s", "world")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("bot.test").exception("failed")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "hello world" and lines[0]["request_id"] == "0123456789abcdef"
    assert lines[1]["level"] == "ERROR" and "ValueError: boom" in lines[1]["exception"]


def test_reprs_never_show_secrets() -> None:
    request = ProvisioningRequest(
        id="0123456789abcdef",
        state=RequestState.PENDING,
        requester_id="U1",
        username="julie2",
        full_name="Julie",
        email="j@x",
        temp_ticket="TICKET-SECRET-VALUE",
    )
    assert "TICKET-SECRET-VALUE" not in repr(request)
    assert "TICKET-SECRET-VALUE" not in repr(Person("j", "J", "e", "TICKET-SECRET-VALUE"))
    client = ConnectClient("https://connect.example.com", "API-KEY-SECRET-VALUE")
    assert "API-KEY-SECRET-VALUE" not in repr(client)


@pytest.mark.parametrize(
    "text",
    [
        "search " + "a" * 4000,
        "search a\x00b",
        "search \x1b[31mred",
        "search <@U123|bob>",
        "search <!channel>",
        "search &lt;script&gt;",
        "\u202esearch julie",
    ],
)
async def test_hostile_command_text_gets_a_clear_answer(bot: BotUnderTest, text: str) -> None:
    response, response_url = await bot.command(text)
    assert response.status_code == 200
    await bot.settle()
    answer = (await bot.slack.wait_for_response(response_url))[-1]
    assert answer["response_type"] == "ephemeral"
    assert response_text(answer).strip()


async def test_unknown_action_gets_an_answer_and_changes_nothing(bot: BotUnderTest) -> None:
    response, response_url = await bot.click("frobnicate", "x", user_id=APPROVER)
    assert response.status_code == 200
    await bot.settle()
    assert "no longer" in response_text((await bot.slack.wait_for_response(response_url))[-1])


async def submit_forged_request(
    bot: BotUnderTest, forged_value: str, *, before_submit: dict | None = None
) -> str:
    """Open the request form from a button value the requester made up, and submit it (with the
    fake Connect switched to `before_submit` in between: the form opens before any look-up)."""
    opened = bot.slack.count("views.open")
    _, click_url = await bot.click(
        ids.ACTION_REQUEST_ACCOUNT, forged_value, user_id=REQUESTER, ephemeral=True
    )
    view = (await bot.slack.wait_for("views.open", count=opened + 1))[-1].args["view"]
    await bot.settle()
    for name, setting in (before_submit or {}).items():
        setattr(bot.connect, name, setting)
    await bot.submit(
        ids.VIEW_JUSTIFICATION,
        {ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "please"}},
        view["private_metadata"],
        user_id=REQUESTER,
    )
    await bot.settle()
    return click_url


def forged(username: str, ticket: str, email: str = "victim@example.com") -> str:
    return json.dumps({"u": username, "n": "Julie Jolly", "e": email, "t": ticket})


async def test_forged_ticket_cannot_create_an_account_for_someone_else(
    bot: BotUnderTest,
) -> None:
    """The requester controls the button value: it pairs julie2's name with mallory's ticket."""
    bot.connect.add_directory_user("mallory", "Mal", "Lory", "mallory@example.com")
    mallorys_ticket = bot.connect.issue_ticket("mallory")
    await submit_forged_request(bot, forged("julie2", mallorys_ticket))
    request = await bot.runtime.store.find_active("julie2")
    assert request is not None and request.temp_ticket != mallorys_ticket
    assert request.email == "julie2@example.com", "the welcome goes to the directory's address"
    await approve(bot, request.id)
    assert bot.connect.get_local_user("julie2") is not None
    assert bot.connect.get_local_user("mallory") is None


@pytest.mark.parametrize("fault", [{"outage": "refuse"}, {"remote_search_error_code": 83}])
async def test_a_person_connect_cannot_confirm_is_not_filed(bot: BotUnderTest, fault: dict) -> None:
    bot.connect.add_directory_user("mallory", "Mal", "Lory", "mallory@example.com")
    mallorys_ticket = bot.connect.issue_ticket("mallory")
    click_url = await submit_forged_request(
        bot, forged("julie2", mallorys_ticket), before_submit=fault
    )
    assert await bot.runtime.store.find_active("julie2") is None
    assert bot.slack.count("chat.postMessage") == 0
    answer = (await bot.slack.wait_for_response(click_url))[-1]
    assert "could not confirm" in response_text(answer)


async def test_requester_who_is_also_an_approver_cannot_approve(bot: BotUnderTest) -> None:
    bot.slack.set_channel_members("CAPPROVERS", ["U0BOT", APPROVER, REQUESTER])
    request_id = await file_request(bot)
    response_url = await approve(bot, request_id, user_id=REQUESTER)
    assert "your own request" in response_text(
        (await bot.slack.wait_for_response(response_url))[-1]
    )
    await approve(bot, request_id, user_id=APPROVER)
    assert (await bot.runtime.store.get(request_id)).decided_by == APPROVER


async def test_search_results_are_only_shown_to_the_searcher(bot: BotUnderTest) -> None:
    _, response_url = await bot.command("search julie")
    await bot.settle()
    answer = (await bot.slack.wait_for_response(response_url))[-1]
    assert answer["response_type"] == "ephemeral"
    # Tickets ride only in ephemeral buttons: nothing with a ticket went to a channel.
    for call in bot.slack.calls_to("chat.postMessage"):
        assert not any(t in json.dumps(call.args) for t in bot.connect.issued_tickets)
    assert ids.ACTION_REQUEST_ACCOUNT in json.dumps(answer)


async def test_unknown_form_is_answered_in_the_form(bot: BotUnderTest) -> None:
    from tests.support.blockkit import assert_valid_view

    response = await bot.submit("some_old_form", {}, "", user_id=REQUESTER)
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "update"
    assert_valid_view(answer["view"])


async def test_search_results_reach_the_user_when_the_response_url_fails(bot: BotUnderTest) -> None:
    bot.slack.add_channel("CGENERAL", members=["U0BOT", REQUESTER])
    response_url = bot.slack.new_response_url()
    bot.slack.set_response_url_status(response_url, 404)
    from tests.support.slack_requests import slash_command_body

    body = slash_command_body(
        text="search julie", user_id=REQUESTER, response_url=response_url, channel_id="CGENERAL"
    )
    assert (await bot.post(body)).status_code == 200
    await bot.settle()
    ephemeral = bot.slack.calls_to("chat.postEphemeral")
    assert ephemeral and ephemeral[-1].args["user"] == REQUESTER
    assert "julie2" in response_text(ephemeral[-1].args)
