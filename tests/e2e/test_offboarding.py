"""When Slack deactivates someone whose Connect account is still active, end to end through
signed events and clicks against the fake Slack and fake Connect: the account is found by the
link the bot recorded or by exact email, the card asks the approvers (Lock / Keep, decided by the
same gate), one card however often the event comes and however many replicas receive it, and a
reactivation before anyone decided closes it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from bot.slack.ui import ids
from bot.workflow.models import BOT_REQUESTER, RequestKind
from bot.workflow.states import RequestState
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
    BotUnderTest,
    response_text,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.flows import approve, file_request, home_click, latest_card, open_home
from tests.support.slack_requests import event_callback_body
from tests.support.store_backends import postgres_schema

ANA = "UANALIMA1"


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    async with postgres_schema() as url:
        yield url


@pytest.fixture
def ana(fake_slack: FakeSlack, fake_connect: FakeConnect) -> str:
    """Ana Lima: in Slack as ana.lima@example.com, in Connect as `alima` (the username is not
    the email's local part: she is found by her last name and her exact email)."""
    fake_slack.add_user(ANA, email="ana.lima@example.com", real_name="Ana Lima")
    fake_connect.add_local_user("alima", "Ana", "Lima", "ana.lima@example.com")
    # Another Lima, another email: never mistaken for her.
    fake_connect.add_local_user("plima", "Paulo", "Lima", "paulo.lima@example.com")
    return ANA


def slack_user(bot: BotUnderTest, user_id: str, *, deleted: bool, **extra: Any) -> dict:
    return bot.slack.add_user(
        user_id,
        deleted=deleted,
        email=extra.pop("email", "ana.lima@example.com"),
        real_name=extra.pop("real_name", "Ana Lima"),
        **extra,
    )


async def user_change(bot: BotUnderTest, user: dict, *, settle: bool = True) -> None:
    response = await bot.post(event_callback_body({"type": "user_change", "user": user}))
    assert response.status_code == 200
    if settle:
        await bot.settle()


def cards(bot: BotUnderTest) -> list[dict]:
    return [
        call.args
        for call in bot.slack.calls_to("chat.postMessage")
        if call.args["channel"] == APPROVER_CHANNEL
    ]


def buttons(card: dict) -> dict[str, str]:
    return {
        element["text"]["text"]: element["action_id"]
        for block in card["blocks"]
        for element in block.get("elements", [])
        if element.get("type") == "button"
    }


def dms(bot: BotUnderTest) -> list[dict]:
    return [
        call.args
        for call in bot.slack.calls_to("chat.postMessage")
        if call.args["channel"] != APPROVER_CHANNEL
    ]


async def deactivation_request(bot: BotUnderTest) -> str:
    [request] = await bot.runtime.store.list_requests(requester_id=BOT_REQUESTER)
    return request.id


async def test_a_deactivation_asks_to_lock_and_lock_goes_through_the_gate(
    bot: BotUnderTest, ana: str
) -> None:
    await user_change(bot, slack_user(bot, ana, deleted=True))
    [card] = cards(bot)
    text = response_text(card)
    assert "Ana Lima was deactivated in Slack; their Connect account is still active" in text
    assert buttons(card) == {"Lock": ids.ACTION_APPROVE, "Keep": ids.ACTION_KEEP}
    request_id = await deactivation_request(bot)
    request = await bot.runtime.store.get(request_id)
    assert request.kind is RequestKind.LOCK and request.username == "alima"
    assert request.subject_id == ana

    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert bot.connect.get_local_user("alima")["locked"] is True
    assert bot.connect.get_local_user("plima")["locked"] is False
    assert "the account is locked" in response_text(latest_card(bot))
    assert not dms(bot), "nobody filed it: no message to a requester that is not a person"


async def test_the_account_is_found_by_the_link_the_bot_recorded(bot: BotUnderTest) -> None:
    # julie2's account was created by the bot for the Slack member with her email.
    bot.slack.add_user("UJULIE2", email="julie2@example.com", real_name="Julie Jolly")
    request_id = await file_request(bot)
    await approve(bot, request_id)
    # By the time she leaves her Slack email is another one: the link still finds the account.
    user = bot.slack.add_user("UJULIE2", deleted=True, email="j.jolly@example.org", real_name="J J")
    await user_change(bot, user)
    [_, card] = cards(bot)
    assert "Julie Jolly was deactivated in Slack" in response_text(card)
    [lock] = await bot.runtime.store.list_requests(requester_id=BOT_REQUESTER)
    assert lock.username == "julie2"


async def test_repeated_and_concurrent_events_file_one_request(bot: BotUnderTest, ana: str) -> None:
    user = slack_user(bot, ana, deleted=True)
    await asyncio.gather(*(user_change(bot, user, settle=False) for _ in range(4)))
    await bot.settle()
    await user_change(bot, user)  # Slack's retry, later
    assert len(cards(bot)) == 1
    assert len(await bot.runtime.store.list_requests(requester_id=BOT_REQUESTER)) == 1


async def test_two_replicas_receiving_the_event_file_one_request(
    bot: BotUnderTest,
    ana: str,
    settings: Settings,
    fake_slack: FakeSlack,
    fake_connect: FakeConnect,
) -> None:
    other = await start_bot(settings, fake_slack, fake_connect, instance_id="test-replica")
    try:
        user = slack_user(bot, ana, deleted=True)
        await asyncio.gather(
            user_change(bot, user, settle=False),
            user_change(other, user, settle=False),
            user_change(bot, user, settle=False),
            user_change(other, user, settle=False),
        )
        await bot.settle()
        await other.settle()
        assert len(await bot.runtime.store.list_requests(requester_id=BOT_REQUESTER)) == 1
        assert len(cards(bot)) == 1
        # Lock clicked on both replicas at once: one lock call.
        request_id = await deactivation_request(bot)
        await asyncio.gather(
            bot.click(ids.ACTION_APPROVE, request_id, user_id=APPROVER),
            other.click(ids.ACTION_APPROVE, request_id, user_id=APPROVER_2),
        )
        await bot.settle()
        await other.settle()
        assert bot.connect.count("POST", "v1/users/*/lock") == 1
        assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    finally:
        with contextlib.suppress(Exception):
            await other.stop()


async def test_keep_declines_the_lock_and_is_not_asked_again(bot: BotUnderTest, ana: str) -> None:
    user = slack_user(bot, ana, deleted=True)
    await user_change(bot, user)
    request_id = await deactivation_request(bot)
    response, _ = await bot.click(ids.ACTION_KEEP, request_id, user_id=APPROVER)
    assert response.status_code == 200
    await bot.settle()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.DENIED and request.decided_by == APPROVER
    assert "Kept by" in response_text(latest_card(bot))
    assert bot.connect.count("POST", "v1/users/*/lock") == 0
    assert bot.connect.get_local_user("alima")["locked"] is False
    assert not dms(bot)
    await user_change(bot, user)  # the event again: the approvers decided already
    assert len(cards(bot)) == 1


async def test_keep_and_lock_are_refused_to_someone_who_may_not_decide(
    bot: BotUnderTest, ana: str
) -> None:
    await user_change(bot, slack_user(bot, ana, deleted=True))
    request_id = await deactivation_request(bot)
    for action in (ids.ACTION_KEEP, ids.ACTION_APPROVE):
        response, response_url = await bot.click(action, request_id, user_id="UOUTSIDER1")
        assert response.status_code == 200
        await bot.settle()
        answer = response_text((await bot.slack.wait_for_response(response_url))[-1])
        assert "approver" in answer
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING
    assert bot.connect.count("POST", "v1/users/*/lock") == 0


async def test_a_reactivation_before_anyone_decided_closes_the_card(
    bot: BotUnderTest, ana: str
) -> None:
    await user_change(bot, slack_user(bot, ana, deleted=True))
    request_id = await deactivation_request(bot)
    await user_change(bot, slack_user(bot, ana, deleted=False))
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.CANCELLED
    card = latest_card(bot)
    assert "reactivated in Slack before anyone decided" in response_text(card)
    assert not buttons(card)
    # A Lock click from a card still showing the buttons (an old copy) changes nothing.
    response, _ = await bot.click(ids.ACTION_APPROVE, request_id, user_id=APPROVER)
    assert response.status_code == 200
    await bot.settle()
    assert bot.connect.count("POST", "v1/users/*/lock") == 0
    assert (await bot.runtime.store.get(request_id)).state is RequestState.CANCELLED


async def test_what_asks_nothing(bot: BotUnderTest, ana: str) -> None:
    # A profile edit: no Connect call at all.
    bot.connect.reset_calls()
    await user_change(bot, slack_user(bot, ana, deleted=False))
    assert bot.connect.calls == []
    # A bot deactivated: nothing looked up.
    await user_change(bot, bot.slack.add_user("UBOTUSER1", deleted=True, is_bot=True))
    assert bot.connect.calls == []
    # Nobody in Connect has the email: no card.
    await user_change(
        bot, slack_user(bot, "UNOBODY01", deleted=True, email="zed@example.com", real_name="Zed")
    )
    # Locked already: no card.
    bot.connect.add_local_user("jlocked", "Jo", "Locked", "jo@example.com", locked=True)
    await user_change(
        bot, slack_user(bot, "UJOLOCK01", deleted=True, email="jo@example.com", real_name="Jo L")
    )
    assert cards(bot) == []


async def test_a_key_that_may_not_lock_posts_no_card(bot: BotUnderTest, ana: str) -> None:
    bot.connect.key_role = "publisher"
    await user_change(bot, slack_user(bot, ana, deleted=True))
    assert cards(bot) == []
    assert await bot.runtime.store.list_requests(requester_id=BOT_REQUESTER) == []


async def test_the_home_tab_offers_lock_and_keep_for_the_bots_question(
    bot: BotUnderTest, ana: str
) -> None:
    await user_change(bot, slack_user(bot, ana, deleted=True))
    request_id = await deactivation_request(bot)
    home = await open_home(bot, APPROVER)
    assert home is not None
    [actions] = [b for b in home["blocks"] if b.get("block_id", "").endswith(request_id)]
    assert [e["text"]["text"] for e in actions["elements"]] == ["Lock", "Keep"]
    await home_click(bot, ids.ACTION_KEEP, request_id, APPROVER)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.DENIED
    assert "Kept by" in response_text(latest_card(bot))


async def test_a_reactivation_handled_first_still_closes_the_question(
    bot: BotUnderTest, ana: str
) -> None:
    """Slack does not order events: the reactivation was handled while the deactivation was
    still looking the account up. Slack says she is active when the question is filed: it is
    closed at once."""
    deleted = slack_user(bot, ana, deleted=True)
    slack_user(bot, ana, deleted=False)  # what users.info answers now
    await user_change(bot, deleted)
    request = await bot.runtime.store.get(await deactivation_request(bot))
    assert request.state is RequestState.CANCELLED
    assert bot.connect.count("POST", "v1/users/*/lock") == 0
