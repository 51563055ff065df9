"""Licence seats end to end, through signed requests against the fake Connect: the card's seat
line and its warning when every seat is taken, `/connect-user seats` for approvers, a key that
may not read seats, and a PUT Connect refuses for want of a seat (code 64)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.slack.ui import ids
from bot.workflow.models import RequestKind
from bot.workflow.seats import IDLE_PER_PAGE
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    OUTSIDER,
    REQUESTER,
    BotUnderTest,
    make_settings,
    response_text,
    start_bot,
)
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


# -- licensed accounts nobody uses -------------------------------------------------------------


def lock_buttons(message: dict) -> list[str]:
    return [
        block["accessory"]["value"]
        for block in message["blocks"]
        if (block.get("accessory") or {}).get("action_id") == ids.ACTION_REQUEST_LOCK
    ]


def page_buttons(message: dict) -> dict[str, tuple[str, str]]:
    return {
        element["text"]["text"]: (element["action_id"], element["value"])
        for block in message["blocks"]
        if block.get("block_id") == ids.SEATS_PAGE_BLOCK
        for element in block["elements"]
    }


async def test_seats_lists_licensed_accounts_nobody_used_oldest_first_with_lock(
    bot: BotUnderTest,
) -> None:
    now = datetime.now(UTC)
    idle_200 = bot.connect.add_local_user("idle200", "Ida", "Old", active_time=now - timedelta(200))
    idle_100 = bot.connect.add_local_user(
        "idle100", "Ian", "Idle", active_time=now - timedelta(100)
    )
    bot.connect.add_local_user("recent", active_time=now - timedelta(days=10))
    bot.connect.add_local_user("lapsed", active_time=now - timedelta(days=800))  # no seat
    bot.connect.add_local_user("gone", locked=True, active_time=now - timedelta(days=200))
    answer = await command(bot, "seats", user_id=APPROVER)
    text = response_text(answer)
    assert "Licensed accounts nobody used for 90 days* (2), oldest first" in text
    assert lock_buttons(answer) == [idle_200, idle_100]
    assert not page_buttons(answer), "one page"

    # Lock goes through the gate: a form asking why, then a lock request on the card.
    opened = bot.slack.count("views.open")
    response, _ = await bot.click(
        ids.ACTION_REQUEST_LOCK, idle_200, user_id=APPROVER, ephemeral=True, channel_id="CGEN"
    )
    assert response.status_code == 200
    view = (await bot.slack.wait_for("views.open", count=opened + 1))[-1].args["view"]
    response = await bot.submit(
        ids.VIEW_LOCK_REQUEST,
        {ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "Unused since spring"}},
        view["private_metadata"],
        user_id=APPROVER,
    )
    assert response.status_code == 200
    await bot.settle()
    [request] = await bot.runtime.store.list_requests(states={RequestState.PENDING})
    assert request.kind is RequestKind.LOCK and request.connect_guid == idle_200
    await approve(bot, request.id, user_id=APPROVER_2)
    assert bot.connect.get_local_user("idle200")["locked"] is True
    answer = await command(bot, "seats", user_id=APPROVER)
    assert lock_buttons(answer) == [idle_100]


async def test_the_idle_list_pages_beyond_one_message(fake_slack, fake_connect, database_url):
    settings = make_settings(fake_slack, fake_connect, database_url, inactive_after_days=30)
    now = datetime.now(UTC)
    guids = [
        fake_connect.add_local_user(f"idle{n:02d}", active_time=now - timedelta(days=300 - n))
        for n in range(IDLE_PER_PAGE + 3)
    ]
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        response, response_url = await bot.command("seats", user_id=APPROVER)
        await bot.settle()
        first = (await bot.slack.wait_for_response(response_url))[-1]
        assert_valid_message(first)
        assert "nobody used for 30 days* (18), oldest first · page 1 of 2" in response_text(first)
        assert lock_buttons(first) == guids[:IDLE_PER_PAGE]
        action, page = page_buttons(first)["Next"]
        assert "Previous" not in page_buttons(first)

        response, _ = await bot.click(
            action, page, user_id=APPROVER, ephemeral=True, response_url=response_url
        )
        assert response.status_code == 200
        await bot.settle()
        second = (await bot.slack.wait_for_response(response_url))[-1]
        assert_valid_message(second)
        assert second.get("replace_original") is True
        assert "page 2 of 2" in response_text(second)
        assert lock_buttons(second) == guids[IDLE_PER_PAGE:]
        assert set(page_buttons(second)) == {"Previous"}

        # Someone who is not an approver pressing a page's button sees nothing of it.
        response, other_url = await bot.click(action, page, user_id=OUTSIDER, ephemeral=True)
        await bot.settle()
        refusal = response_text((await bot.slack.wait_for_response(other_url))[-1])
        assert "only approvers" in refusal and "idle" not in refusal
    finally:
        await bot.stop()
