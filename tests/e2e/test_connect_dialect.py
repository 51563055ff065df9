"""The bot against the fake Connect's published dialect (tests/support/fake_connect.py): what a
real server sends for people without an account (zero values or nulls), fields newer than the bot,
a login provider without remote search, and keys of each role."""

from __future__ import annotations

import json

import pytest

from bot.slack.ui import ids
from bot.slack.ui.search import search_failure_message
from bot.workflow.outcomes import SearchProblem
from bot.workflow.states import RequestState
from tests.support.bot_under_test import REQUESTER, BotUnderTest
from tests.support.flows import approve, command, file_request


async def search(bot: BotUnderTest, prefix: str) -> dict:
    return await command(bot, f"search {prefix}", REQUESTER)


def request_buttons(message: dict) -> list[dict]:
    return [
        block["accessory"]
        for block in message.get("blocks", [])
        if (block.get("accessory") or {}).get("action_id") == ids.ACTION_REQUEST_ACCOUNT
    ]


@pytest.mark.parametrize("values", ["zero", "null"])
async def test_search_request_and_approval_on_each_kind_of_blank(
    bot: BotUnderTest, values: str
) -> None:
    bot.connect.unregistered_values = values
    assert bot.connect.extra_fields  # every record also carries fields the bot does not know
    message = await search(bot, "julie")
    assert len(request_buttons(message)) == 1  # julie2 has no account; julie1 has one
    request_id = await file_request(bot, "julie2")
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert bot.connect.get_local_user("julie2") is not None


async def test_a_provider_without_remote_search(bot: BotUnderTest) -> None:
    bot.connect.provider = "saml"
    message = await search(bot, "julie")
    # Existing accounts, found locally; new ones are made at first login there.
    assert "Posit Connect accounts matching" in message["text"]
    assert "julie1" in json.dumps(message) and "julie2" not in json.dumps(message)


async def test_a_viewer_key_is_a_configuration_problem(bot: BotUnderTest) -> None:
    bot.connect.key_role = "viewer"
    message = await search(bot, "julie")
    expected = search_failure_message(SearchProblem.CONFIGURATION, "julie")
    assert message["text"] == expected["text"]


async def test_a_publisher_key_that_sees_no_emails_still_creates(bot: BotUnderTest) -> None:
    bot.connect.key_role = "publisher"
    bot.connect.hide_emails = True
    request_id = await file_request(bot, "julie2")
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert bot.connect.get_local_user("julie2")["email"] == "julie2@example.com"  # type: ignore[index]
