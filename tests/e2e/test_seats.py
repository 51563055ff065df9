"""Licence seats end to end, through signed requests against the fake Connect: the card's seat
line and its warning when every seat is taken, `/connect-user seats` for approvers, a key that
may not read seats, and a PUT Connect refuses for want of a seat (code 64)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.workflow.states import RequestState
from tests.support.bot_under_test import OUTSIDER, REQUESTER, BotUnderTest, response_text
from tests.support.flows import PUT, approve, command, dms_to, file_request, latest_card

FULL_WARNING = "this person will not be able to log in until a seat is freed"


# Accounts taking a seat in the fake Connect: the key's owner and julie1 (tests/conftest.py),
# both active now. A new account takes none until its first login.
LICENSED = 2


def card_text(bot: BotUnderTest) -> str:
    return response_text(latest_card(bot))


async def test_the_card_shows_the_seats_in_use_and_the_limit(bot: BotUnderTest) -> None:
    bot.connect.license["users"] = 50
    await file_request(bot)
    assert "Seats: 2 of 50 in use" in card_text(bot)
    assert FULL_WARNING not in card_text(bot)


async def test_a_full_licence_warns_in_words_and_the_approver_may_still_approve(
    bot: BotUnderTest,
) -> None:
    bot.connect.license["users"] = LICENSED
    request_id = await file_request(bot)
    card = latest_card(bot)
    assert f"2 of 2 seats in use: {FULL_WARNING}" in response_text(card)
    assert [b for b in card["blocks"] if b.get("type") == "actions"], "Approve is offered"

    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert bot.connect.get_local_user("julie2") is not None
    assert bot.slack.count("chat.update") >= 1
    assert "seats in use" not in card_text(bot), "a decided card has no seat line"


async def test_a_key_that_may_not_read_seats_shows_no_seat_line(bot: BotUnderTest) -> None:
    bot.connect.key_role = "publisher"
    bot.connect.license["users"] = 1
    request_id = await file_request(bot)
    assert "seats in use" not in card_text(bot) and "Seats:" not in card_text(bot)
    assert bot.connect.count("GET", "v1/user") == 1
    assert not [c for c in bot.connect.calls_for("GET", "v1/users") if "account_status" in c.query]
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED


async def test_a_put_refused_for_want_of_a_seat_leaves_the_request_actionable(
    bot: BotUnderTest,
) -> None:
    bot.connect.license_checked_on_create = True
    bot.connect.license["users"] = LICENSED
    request_id = await file_request(bot)
    response_url = await approve(bot, request_id)

    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING
    card = latest_card(bot)
    text = response_text(card)
    assert "no free seats" in text and "Connect code 64" in text
    assert "can be approved again once a seat is free" in text
    assert [b for b in card["blocks"] if b.get("type") == "actions"], "Approve is offered"
    assert "no free seats" in response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert all("no free seats" not in response_text(dm) for dm in dms_to(bot, REQUESTER))

    bot.connect.license["users"] += 1  # a seat is freed (the licence extended)
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert bot.connect.count(PUT["method"], "v1/users") == 2


# -- /connect-user seats --------------------------------------------------------------------------


async def test_approvers_see_the_seats_inactive_and_locked_accounts(bot: BotUnderTest) -> None:
    bot.connect.license["users"] = 50
    bot.connect.add_local_user("old", active_time=datetime.now(UTC) - timedelta(days=800))
    bot.connect.add_local_user("gone", locked=True)
    answer = await command(bot, "seats", user_id="UAPPROVER1")
    text = response_text(answer)
    assert "2 of 50 seats in use" in text and "Free: 48" in text
    assert "Inactive accounts (no seat): 1" in text and "Locked accounts (no seat): 1" in text


async def test_others_are_refused_in_words(bot: BotUnderTest) -> None:
    for user_id in (OUTSIDER, REQUESTER):
        text = response_text(await command(bot, "seats", user_id=user_id))
        assert "only approvers" in text and "licence seats" in text
    assert not [c for c in bot.connect.calls_for("GET", "v1/users") if "account_status" in c.query]


async def test_an_approver_is_told_when_the_key_cannot_read_seats(bot: BotUnderTest) -> None:
    bot.connect.key_role = "publisher"
    text = response_text(await command(bot, "seats", user_id="UAPPROVER1"))
    assert "not an administrator's" in text and "connect-user-bot check" in text
