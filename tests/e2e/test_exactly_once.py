"""Exactly once when Connect and Slack are slow: the real app on SQLite and on PostgreSQL, with a
fake Connect that commits a PUT after the bot stopped waiting (CONNECT_TIMEOUT is 2 s here) and a
fake Slack that makes the bot wait out Retry-After. Two bots on one database stand for replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.slack.ui import ids
from bot.workflow.states import RequestState
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
from tests.support.flows import PUT, approve, confirm_approval, dms_to, file_request, latest_card
from tests.support.store_backends import postgres_schema

WELCOMED = "UJULIE2"


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    async with postgres_schema() as url:
        yield url


@pytest.fixture
def julie_in_slack(fake_slack: FakeSlack) -> Iterator[None]:
    fake_slack.add_user(WELCOMED, email="julie2@example.com")
    yield


@contextlib.asynccontextmanager
async def replica(
    settings: Settings, slack: FakeSlack, connect: FakeConnect, **extra: object
) -> AsyncIterator[BotUnderTest]:
    other = await start_bot(settings, slack, connect, instance_id="test-replica", **extra)  # type: ignore[arg-type]
    try:
        yield other
    finally:
        await other.stop()


async def wait_for(
    condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 10
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def has_buttons(card: dict) -> bool:
    return any(block.get("type") == "actions" for block in card["blocks"])


def cards(slack: FakeSlack) -> list:
    return [
        c
        for c in slack.calls_to("chat.postMessage")
        if c.ok and c.args.get("channel") == APPROVER_CHANNEL and not c.args.get("thread_ts")
    ]


def delivered_dms(slack: FakeSlack, user: str) -> list:
    return [
        c for c in slack.calls_to("chat.postMessage") if c.ok and c.args["channel"] == f"D{user}"
    ]


async def test_a_put_committed_after_the_timeout_is_approved_once(
    bot: BotUnderTest, julie_in_slack: None
) -> None:
    request_id = await file_request(bot)
    # Connect creates the account 3 s after the PUT (the bot gave up after 2 s) and answers much
    # later still.
    bot.connect.put_mode = "commit_late"
    bot.connect.commit_delay = 3.0
    bot.connect.answer_delay = 10.0
    await confirm_approval(bot, request_id)

    async def checking() -> bool:
        request = await bot.runtime.store.get(request_id)
        return request.state is RequestState.PROVISIONING and "checking whether" in (
            request.last_error or ""
        )

    await wait_for(checking, "the bot to start checking the outcome")

    async def card_says_so() -> bool:
        return "Checking whether the account was created" in response_text(latest_card(bot))

    await wait_for(card_says_so, "the card to say the outcome is being checked")
    card = latest_card(bot)
    assert not has_buttons(card), "no Approve while the outcome is being checked"
    # A second approver, seeing no account yet, cannot make a second PUT.
    _, refused_url = await bot.click(ids.ACTION_APPROVE, request_id, user_id=APPROVER_2)
    assert "already decided" in response_text((await bot.slack.wait_for_response(refused_url))[-1])

    await bot.settle(timeout=20)
    assert bot.connect.count(**PUT) == 1
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.decided_by == APPROVER
    assert request.connect_guid == bot.connect.get_local_user("julie2")["guid"]
    assert "Created during this approval" in request.outcome_note
    card = latest_card(bot)
    assert "the account was created" in response_text(card) and not has_buttons(card)
    assert len(delivered_dms(bot.slack, REQUESTER)) == 1
    assert "approved" in response_text(dms_to(bot, REQUESTER)[-1])
    assert len(delivered_dms(bot.slack, WELCOMED)) == 1


async def test_username_in_use_for_this_requests_own_late_account_is_approved(
    bot: BotUnderTest, julie_in_slack: None
) -> None:
    """Connect carries out a PUT only after the bot looked and went back to pending: the next
    Approve gets "username in use" for the account this request created."""
    request_id = await file_request(bot)
    bot.runtime.provisioner.settle_delays = (0.2, 0.4)  # gives up looking before Connect commits
    bot.connect.put_mode = "commit_late"
    bot.connect.commit_delay = 3.0
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING and "no account was created" in request.last_error

    async def created() -> bool:
        return bot.connect.get_local_user("julie2") is not None

    await wait_for(created, "Connect to carry out the first PUT")
    bot.connect.put_mode = "normal"
    await approve(bot, request_id, user_id=APPROVER_2)

    assert bot.connect.count(**PUT) == 2  # the second answered 409 (code 8): nothing twice
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED, request
    assert request.connect_guid == bot.connect.get_local_user("julie2")["guid"]
    assert "Created during this approval" in request.outcome_note
    assert "Created during this approval" in response_text(latest_card(bot))
    assert len(delivered_dms(bot.slack, REQUESTER)) == 1
    assert "approved" in response_text(dms_to(bot, REQUESTER)[-1])
    assert len(delivered_dms(bot.slack, WELCOMED)) == 1


async def test_a_put_longer_than_the_lease_is_never_taken_over(
    bot: BotUnderTest, settings: Settings
) -> None:
    """LEASE_SECONDS=1 (below what the settings now allow, to make the PUT outlast it) and a PUT
    Connect answers after 1.8 s: neither the holder's own recovery nor a replica's takes the
    lease over, and a second approver's click makes no second PUT."""
    request_id = await file_request(bot)
    async with replica(settings, bot.slack, bot.connect) as other:
        for running in (bot, other):
            running.runtime.provisioner.lease = timedelta(seconds=1)
        bot.connect.latency = {"PUT": 1.8}
        await confirm_approval(bot, request_id)
        await asyncio.sleep(1.4)  # past the lease, the PUT still in flight
        assert await bot.runtime.provisioner.recover_expired_leases() == []
        assert await other.runtime.provisioner.recover_expired_leases() == []
        await other.click(ids.ACTION_APPROVE, request_id, user_id=APPROVER_2)
        await bot.settle()
        await other.settle()
        assert bot.connect.count(**PUT) == 1
        request = await bot.runtime.store.get(request_id)
        assert request.state is RequestState.APPROVED and request.decided_by == APPROVER
        assert request.outcome_note is None  # nothing unusual to report
        assert len(delivered_dms(bot.slack, REQUESTER)) == 1


async def test_a_replica_with_a_skewed_clock_leaves_a_live_lease_alone(
    bot: BotUnderTest, settings: Settings
) -> None:
    """Leases are compared with the database's clock: a replica whose clock runs an hour ahead
    does not think a fresh lease has run out."""
    request_id = await file_request(bot)

    def an_hour_ahead() -> datetime:
        return datetime.now(UTC) + timedelta(hours=1)

    async with replica(settings, bot.slack, bot.connect, clock=an_hour_ahead) as other:
        bot.connect.latency = {"PUT": 1.5}
        await confirm_approval(bot, request_id)
        await asyncio.sleep(0.7)
        assert await other.runtime.provisioner.recover_expired_leases() == []
        await bot.settle()
        await other.settle()
    assert bot.connect.count(**PUT) == 1
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.decided_by == APPROVER
    assert len(delivered_dms(bot.slack, REQUESTER)) == 1


async def test_a_slow_slack_and_two_workers_post_one_card_and_one_dm(
    bot: BotUnderTest, settings: Settings
) -> None:
    """One delivery outlasts the delivery lease (slack_sdk waits out Retry-After twice on top of
    the latency); the other worker polls all the while and must not deliver it again."""
    async with replica(settings, bot.slack, bot.connect) as other:
        for running in (bot, other):
            running.runtime.notifier.lease_seconds = 1.0
            running.runtime.notifier.poll_seconds = 0.1
        bot.slack.set_latency("chat.postMessage", 0.3)
        bot.slack.fail("chat.postMessage", status=429, retry_after=1, times=2)
        request_id = await file_request(bot)
        await other.settle()
        assert len(cards(bot.slack)) == 1
        assert (await bot.runtime.store.get(request_id)).card_ts == cards(bot.slack)[0].response[
            "ts"
        ]

        bot.slack.fail("chat.postMessage", status=429, retry_after=1, times=2)
        await approve(bot, request_id)
        await other.settle()
        await asyncio.sleep(1.5)  # time for a duplicate to show up
        assert len(cards(bot.slack)) == 1
        assert len(delivered_dms(bot.slack, REQUESTER)) == 1
        assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
