"""Owed messages survive Slack failures and restarts, and arrive once each."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import SlackNotifier
from bot.store.sql_store import SqlRequestStore
from bot.store.tables import outbox
from bot.workflow.models import OutboxItem, OutboxKind
from bot.workflow.states import RequestState
from tests.support import store_backends
from tests.support.bot_under_test import (
    APPROVER_CHANNEL,
    BOT_TOKEN,
    REQUESTER,
    BotUnderTest,
    start_bot,
)
from tests.support.fake_slack import FakeSlack
from tests.support.fake_slack.state import wall_clock_ts
from tests.support.flows import approve, confirm_approval, file_request
from tests.support.samples import new_request
from tests.support.store_backends import StoreBackend

store_backend = store_backends.store_backend


def delivered(bot: BotUnderTest, method: str, channel: str) -> list:
    return [c for c in bot.slack.calls_to(method) if c.ok and c.args.get("channel") == channel]


@pytest.fixture
def quick_retries(bot: BotUnderTest) -> BotUnderTest:
    bot.runtime.notifier.backoff_base = 0.05
    return bot


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_card_is_posted_once_after_slack_recovers(
    quick_retries: BotUnderTest, status: int
) -> None:
    bot = quick_retries
    # The confirmation and the card share chat.postMessage's fault: fail the card's first tries.
    bot.slack.fail("chat.postMessage", status=status, times=3, retry_after=0)
    request_id = await file_request(bot)
    assert len(delivered(bot, "chat.postMessage", APPROVER_CHANNEL)) == 1
    request = await bot.runtime.store.get(request_id)
    assert request.card_ts


async def test_outcome_messages_are_retried_and_sent_once(quick_retries: BotUnderTest) -> None:
    bot = quick_retries
    request_id = await file_request(bot)
    bot.slack.fail("chat.update", status=500, times=2)
    bot.slack.fail("conversations.open", status=503, times=2)
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert len(delivered(bot, "chat.postMessage", f"D{REQUESTER}")) == 1
    updates = [c for c in bot.slack.calls_to("chat.update") if c.ok]
    assert updates and "Approved" in str(updates[-1].args)


async def test_messages_owed_at_shutdown_are_sent_by_the_next_process(
    bot: BotUnderTest, settings
) -> None:
    request_id = await file_request(bot)
    bot.slack.fail("chat.update", status=500, times=None)
    bot.slack.fail("conversations.open", status=500, times=None)
    await confirm_approval(bot, request_id)
    await bot.runtime.supervisor.join()
    await bot.runtime.notifier.deliver_due()
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert await bot.runtime.store.outbox_pending_count() > 0
    await bot.stop()
    bot.slack.clear_faults()
    restarted = await start_bot(settings, bot.slack, bot.connect, instance_id="test-2")
    try:
        # The old process's backoff is in the store; bring the retries due now.
        async with restarted.runtime.engine.begin() as conn:
            await conn.execute(outbox.update().values(next_attempt_at=None))
        await restarted.settle()
        assert len(delivered(restarted, "chat.postMessage", f"D{REQUESTER}")) == 1
        assert await restarted.runtime.store.outbox_pending_count() == 0
    finally:
        await restarted.stop()


async def test_permanent_slack_errors_are_given_up(bot: BotUnderTest) -> None:
    bot.slack.set_channel_not_member(APPROVER_CHANNEL)
    request_id = await file_request_without_card(bot)
    request = await bot.runtime.store.get(request_id)
    assert request.card_ts is None
    assert await bot.runtime.store.outbox_pending_count() == 0


async def file_request_without_card(bot: BotUnderTest) -> str:
    from tests.support.flows import open_request_form, submit_request

    view, click_url = await open_request_form(bot, "julie2")
    await submit_request(bot, view, "needs it")
    request = await bot.runtime.store.find_active("julie2")
    # The requester is told that the approvers could not be reached, not left waiting.
    answer = (await bot.slack.wait_for_response(click_url))[-1]
    assert "couldn't post it to the approver channel" in str(answer)
    return request.id


class TakenOver(SqlRequestStore):
    """A worker that stalled past its delivery lease: another worker holds the message now."""

    async def renew_outbox_lease(
        self, message_id: int, *, owner: str, lease_seconds: float
    ) -> bool:
        return False


async def test_a_card_is_not_posted_by_a_worker_that_lost_the_message(
    store_backend: StoreBackend, fake_slack: FakeSlack
) -> None:
    store = store_backend.store
    await store.create(new_request(), outbox=[OutboxItem(OutboxKind.POST_CARD)])
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)

    def worker(name: str, store: SqlRequestStore) -> SlackNotifier:
        return SlackNotifier(
            store=store,
            client=client,
            approver_channel=APPROVER_CHANNEL,
            connect_url="https://connect.example.com/",
            instance_id=name,
            lease_seconds=0.5,
        )

    stalled = worker("stalled", TakenOver(store_backend.engine))
    assert await stalled.deliver_due() == 1
    assert fake_slack.count("chat.postMessage") == 0, "checked right before posting"
    # Left as it was: the worker holding it now (here, after the lease ran out) delivers it.
    await asyncio.sleep(0.6)
    assert await worker("other", store).deliver_due() == 1
    assert fake_slack.count("chat.postMessage") == 1
    assert (await store.get("req1")).card_ts  # type: ignore[union-attr]
    assert await store.outbox_pending_count() == 0


async def test_a_card_whose_answer_was_lost_is_found_not_posted_again(
    quick_retries: BotUnderTest,
) -> None:
    """Slack posts the card, but its answer never reaches the bot (here: an error in place of
    the answer). The retry finds the card by its metadata and adopts it: one card, and the
    later updates edit that one."""
    bot = quick_retries
    bot.slack.ts_base_micros = wall_clock_ts()  # the search looks from when the card was owed
    lost = []

    def post_then_lose_the_answer(args: dict) -> dict:
        answer = bot.slack._dispatch("chat.postMessage", args)
        if args.get("channel") == APPROVER_CHANNEL and not lost:
            lost.append(answer["ts"])
            return {"ok": False, "error": "fatal_error"}
        return answer

    bot.slack.set_handler("chat.postMessage", post_then_lose_the_answer)
    request_id = await file_request(bot)
    await bot.settle()
    cards = bot.slack.channel_messages(APPROVER_CHANNEL)
    assert len(cards) == 1 and lost == [cards[0]["ts"]]
    request = await bot.runtime.store.get(request_id)
    assert request.card_ts == cards[0]["ts"]
    assert bot.slack.count("conversations.history") == 1
    await approve(bot, request_id)
    updates = bot.slack.calls_to("chat.update")
    assert updates and {u.args["ts"] for u in updates} == {cards[0]["ts"]}


async def test_a_first_post_never_searches_the_history(quick_retries: BotUnderTest) -> None:
    await file_request(quick_retries)
    assert quick_retries.slack.count("conversations.history") == 0
