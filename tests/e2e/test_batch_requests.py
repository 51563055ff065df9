"""Asking for many people at once, through signed Slack requests: names resolve exactly (never a
prefix), the ready ones are filed as ordinary requests on one card per part, and approvers
decide them all at once (only those they may decide, the rest said) or one by one."""

from __future__ import annotations

import json

from bot.slack.ui import ids
from bot.workflow.batches import PART_SIZE
from bot.workflow.states import RequestState
from tests.e2e.test_lifecycle_requests import Clock, lifecycle_settings
from tests.support.blockkit import assert_valid_message, assert_valid_view, buttons
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
    REQUESTER,
    BotUnderTest,
    response_text,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.flows import PUT, command, role_state


def cards(bot: BotUnderTest) -> list[dict]:
    return [
        c.args
        for c in bot.slack.calls_to("chat.postMessage")
        if c.args["channel"] == APPROVER_CHANNEL and not c.args.get("thread_ts")
    ]


def card_now(bot: BotUnderTest, ts: str) -> dict:
    """The card as Slack shows it now: its last update, else as posted."""
    updates = [c.args for c in bot.slack.calls_to("chat.update") if c.args["ts"] == ts]
    if updates:
        return updates[-1]
    return next(
        c.response["message"] | c.args
        for c in bot.slack.calls_to("chat.postMessage")
        if c.response.get("ts") == ts
    )


def people(bot: BotUnderTest, count: int, prefix: str = "newhire") -> list[str]:
    names = [f"{prefix}{n:02d}" for n in range(count)]
    for name in names:
        bot.connect.add_directory_user(name, "New", f"Hire {name[-2:]}", f"{name}@example.com")
    return names


async def file_batch(bot: BotUnderTest, text: str, *, user_id: str = REQUESTER) -> list[str]:
    """Type `/connect-user request <text>`, press the button, submit the form; returns the ids
    of the requests filed (the requester is told how many)."""
    listing = await command(bot, f"request {text}", user_id)
    [request] = [b for b in buttons(listing) if b["action_id"] == ids.ACTION_REQUEST_BATCH]
    opened = bot.slack.count("views.open")
    response, response_url = await bot.click(
        ids.ACTION_REQUEST_BATCH, request["value"], user_id=user_id, ephemeral=True
    )
    assert response.status_code == 200
    await bot.settle()
    view = bot.slack.calls_to("views.open")[opened:][-1].args["view"]
    assert_valid_view(view)
    response = await bot.submit(
        ids.VIEW_BATCH_REQUEST,
        {
            ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: {"value": "The spring cohort."}},
            ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state("viewer")},
        },
        view["private_metadata"],
        user_id=user_id,
    )
    assert response.status_code == 200
    await bot.settle()
    mine = await bot.runtime.store.list_requests(requester_id=user_id, limit=100)
    filed = [r.id for r in mine if r.batch_id is not None]
    told = response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert f"{len(filed)} requests were sent to the approvers" in told
    return filed


async def test_names_resolve_exactly_and_say_why_not(bot: BotUnderTest) -> None:
    bot.connect.add_directory_user("alice", "Alice", "Ames", "alice@example.com")
    bot.connect.add_directory_user("hui1.liu", "Hui", "Liu", "hui1.liu@example.com")
    bot.connect.add_directory_user("twin1", "Twin", "One", "twin@example.com")
    bot.connect.add_directory_user("twin2", "Twin", "Two", "twin@example.com")
    bot.connect.add_local_user("bob", "Bob", "Burns", "bob@example.com", user_role="publisher")
    listing = await command(
        bot, "request alice hui1.li bob twin@example.com Alice@Example.com nobody", REQUESTER
    )
    text = response_text(listing)
    assert "✅ alice: Alice Ames (alice)" in text
    assert "❓ hui1.li: nobody in the directory has this exact username or email" in text
    assert "👤 bob: Bob Burns (bob) has an account already (role: Publisher)" in text
    assert "⚠️ twin@example.com: several directory entries have it" in text
    assert "↩️ Alice@Example.com: the same person as an earlier name" in text
    [request] = [b for b in buttons(listing) if b["action_id"] == ids.ACTION_REQUEST_BATCH]
    assert json.loads(request["value"]) == ["alice"]


async def test_a_batch_is_one_card_and_approve_all_skips_the_approvers_own(
    bot: BotUnderTest,
) -> None:
    names = people(bot, 3)
    # The third new hire is APPROVER themselves (the same email in Slack).
    bot.slack.add_user(APPROVER, email="newhire02@example.com", real_name="New Hire")
    filed = await file_batch(bot, " ".join(names))
    assert len(filed) == 3
    [card] = cards(bot)
    assert_valid_message(card)
    assert "for 3 people" in response_text(card)

    response, response_url = await bot.click(
        ids.ACTION_APPROVE_ALL,
        f"{(await bot.runtime.store.get(filed[0])).batch_id}:0",
        user_id=APPROVER,
    )
    assert response.status_code == 200
    await bot.settle()
    answer = response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert "Approved: 2 requests" in answer and "Skipped 1" in answer
    assert "newhire02" in answer and "your own Connect access" in answer
    assert bot.connect.count(**PUT) == 2
    by_name = {}
    for request_id in filed:
        request = await bot.runtime.store.get(request_id)
        by_name[request.username] = request
    assert by_name["newhire02"].state is RequestState.PENDING
    last = by_name["newhire02"].id
    # Another approver decides the one left, with its own button on the card.
    await bot.click(ids.ACTION_APPROVE, last, user_id=APPROVER_2)
    await bot.settle()
    view = bot.slack.calls_to("views.open")[-1].args["view"]
    await bot.submit(
        ids.VIEW_APPROVE,
        {ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state("viewer")}},
        view["private_metadata"],
        user_id=APPROVER_2,
    )
    await bot.settle()
    assert (await bot.runtime.store.get(last)).state is RequestState.APPROVED
    assert bot.connect.count(**PUT) == 3
    final = card_now(bot, card_ts(bot, card))
    assert_valid_message(final)
    assert response_text(final).count("Approved by") == 3
    assert not [b for b in buttons(final) if b["action_id"] == ids.ACTION_APPROVE_ALL]
    # Several updates owed to the card were merged: fewer chat.update calls than changes.
    assert bot.slack.count("chat.update") < 2 * 3


def card_ts(bot: BotUnderTest, card: dict) -> str:
    for call in bot.slack.calls_to("chat.postMessage"):
        if call.args is card:
            return call.response["ts"]
    raise AssertionError("card not found")


async def test_a_batch_too_big_for_one_card_is_split_into_parts(bot: BotUnderTest) -> None:
    names = people(bot, PART_SIZE + 2)
    filed = await file_batch(bot, " ".join(names))
    assert len(filed) == PART_SIZE + 2
    posted = cards(bot)
    assert len(posted) == 2
    for card in posted:
        assert_valid_message(card)
    titles = sorted(card["blocks"][0]["text"]["text"] for card in posted)
    assert titles == [
        "Connect account requests (part 1 of 2)",
        "Connect account requests (part 2 of 2)",
    ]
    batch_id = (await bot.runtime.store.get(filed[0])).batch_id
    response, _ = await bot.click(ids.ACTION_APPROVE_ALL, f"{batch_id}:1", user_id=APPROVER)
    assert response.status_code == 200
    await bot.settle()
    states = [(await bot.runtime.store.get(i)).state for i in filed]
    assert states.count(RequestState.APPROVED) == 2, "Approve all decides its own part only"
    assert bot.connect.count(**PUT) == 2


async def test_deny_all_asks_one_reason_and_denies_the_part(bot: BotUnderTest) -> None:
    names = people(bot, 2)
    filed = await file_batch(bot, " ".join(names))
    batch_id = (await bot.runtime.store.get(filed[0])).batch_id
    opened = bot.slack.count("views.open")
    await bot.click(ids.ACTION_DENY_ALL, f"{batch_id}:0", user_id=APPROVER)
    await bot.settle()
    view = bot.slack.calls_to("views.open")[opened:][-1].args["view"]
    assert view["callback_id"] == ids.VIEW_DENY_ALL
    await bot.submit(
        ids.VIEW_DENY_ALL,
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"value": "No budget."}}},
        view["private_metadata"],
        user_id=APPROVER,
    )
    await bot.settle()
    for request_id in filed:
        request = await bot.runtime.store.get(request_id)
        assert request.state is RequestState.DENIED and request.deny_reason == "No budget."
    assert bot.connect.count(**PUT) == 0


async def test_the_list_is_capped_and_mentions_are_refused(bot: BotUnderTest) -> None:
    many = " ".join(f"p{n}" for n in range(51))
    assert "at most 50 people" in response_text(await command(bot, f"request {many}", REQUESTER))
    said = response_text(await command(bot, "request <@U0123ABC>", REQUESTER))
    assert "not a Slack mention" in said


async def test_approve_all_leaves_a_raised_role_to_its_own_confirmation(
    bot: BotUnderTest,
) -> None:
    names = people(bot, 2)
    filed = await file_batch(bot, " ".join(names))
    raised_id = filed[0]
    # Another approver would grant Publisher to the first: a question of its own.
    await bot.click(ids.ACTION_APPROVE, raised_id, user_id=APPROVER_2)
    await bot.settle()
    view = bot.slack.calls_to("views.open")[-1].args["view"]
    await bot.submit(
        ids.VIEW_APPROVE,
        {ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state("publisher")}},
        view["private_metadata"],
        user_id=APPROVER_2,
    )
    await bot.settle()
    assert (await bot.runtime.store.get(raised_id)).role_asked == "publisher"
    batch_id = (await bot.runtime.store.get(raised_id)).batch_id
    _, response_url = await bot.click(ids.ACTION_APPROVE_ALL, f"{batch_id}:0", user_id=APPROVER)
    await bot.settle()
    answer = response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert "Approved: 1 requests" in answer and "Skipped 1" in answer
    assert (await bot.runtime.store.get(raised_id)).state is RequestState.PENDING
    assert bot.connect.count(**PUT) == 1


async def test_a_batch_card_is_reminded_and_escalated_once(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> None:
    """Each person's request has its own timers, but the approvers are nudged once per card:
    one reminder in its thread, one announcement in the escalation channel."""
    clock = Clock()
    fake_slack.add_channel("CESCALATE", is_private=True, members=["U0BOT"])
    settings = lifecycle_settings(
        fake_slack,
        fake_connect,
        database_url,
        escalate_after_hours=30,
        slack_escalation_channel="CESCALATE",
    )
    bot = await start_bot(settings, fake_slack, fake_connect, clock=clock)
    try:
        filed = await file_batch(bot, " ".join(people(bot, 3)))
        assert len(filed) == 3
        clock.advance(hours=31)
        await bot.runtime.timers.run()
        await bot.settle()
        posts = [c.args for c in bot.slack.calls_to("chat.postMessage") if c.ok]
        assert len([p for p in posts if p["channel"] == "CESCALATE"]) == 1
        assert len([p for p in posts if p.get("thread_ts")]) == 1
    finally:
        await bot.stop()
