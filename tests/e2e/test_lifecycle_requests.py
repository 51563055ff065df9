"""The request lifecycle end to end: expiry, reminders, cancelling, `/connect-user pending` and
`status`, and the App Home tab, through the real app with a clock the tests move."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings
from bot.slack.ui import ids
from bot.workflow.models import NewRequest, OutboxItem, OutboxKind, Person
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message, buttons, request_buttons
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
    OUTSIDER,
    REQUESTER,
    BotUnderTest,
    make_settings,
    response_text,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.flows import (
    PUT,
    answer_to,
    approve,
    command,
    dms_to,
    file_request,
    home_click,
    home_of,
    latest_card,
    open_home,
    open_request_form,
    submit_approval,
    submit_request,
)
from tests.support.store_backends import BACKENDS, postgres_schema

ROOT = Path(__file__).resolve().parents[2]
EXPIRY_HOURS = 72
REMINDER_HOURS = 24


class Clock:
    """The bot's clock, moved by the test: timers are due times in the store, so moving the
    clock and running a timer pass is all that passing time means to the bot."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def lifecycle_settings(
    slack: FakeSlack, connect: FakeConnect, database_url: str, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "request_expiry_hours": EXPIRY_HOURS,
        "reminder_after_hours": REMINDER_HOURS,
        # The background pass runs once at start; the tests run the others themselves.
        "timers_interval_seconds": 3600,
    }
    values.update(overrides)
    return make_settings(slack, connect, database_url, **values)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bot(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str, clock: Clock
) -> AsyncIterator[BotUnderTest]:
    fake_connect.add_directory_user("bob1", "Bob", "Builder", "bob1@example.com")
    settings = lifecycle_settings(fake_slack, fake_connect, database_url)
    running = await start_bot(settings, fake_slack, fake_connect, clock=clock)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await running.stop()


async def tick(bot: BotUnderTest, clock: Clock, **delta: float) -> None:
    """Let time pass, run one timer pass, deliver what it owes."""
    clock.advance(**delta)
    await bot.runtime.timers.run()
    await bot.settle()


def reminders(bot: BotUnderTest) -> list[dict]:
    return [c.args for c in bot.slack.calls_to("chat.postMessage") if c.args.get("thread_ts")]


async def state_of(bot: BotUnderTest, request_id: str) -> RequestState:
    request = await bot.runtime.store.get(request_id)
    assert request is not None
    return request.state


async def store_requests(
    bot: BotUnderTest, count: int, *, requester: str = REQUESTER, prefix: str = "bulk"
) -> list[str]:
    """Pending requests with posted cards, straight into the store (the UI path is slow)."""
    made = []
    for n in range(count):
        request_id = f"{abs(hash((prefix, requester))) % 10**8:08x}{n:08x}"
        await bot.runtime.store.create(
            NewRequest(
                request_id=request_id,
                requester_id=requester,
                person=Person(f"{prefix}{n}", f"Person {n}", f"{prefix}{n}@example.com", "tkt"),
                justification="a long reason " * 40,
                created_at=bot.runtime.timers.clock() + timedelta(seconds=n),
            )
        )
        await bot.runtime.store.set_card(request_id, APPROVER_CHANNEL, f"1700000001.{n:06d}")
        made.append(request_id)
    return made


# -- expiry ----------------------------------------------------------------------------------


async def test_a_pending_request_expires_and_its_card_explains_itself(
    bot: BotUnderTest, clock: Clock
) -> None:
    request_id = await file_request(bot)
    await tick(bot, clock, hours=EXPIRY_HOURS - 1)
    assert await state_of(bot, request_id) is RequestState.PENDING

    await tick(bot, clock, hours=1, minutes=1)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.EXPIRED
    assert request.temp_ticket == "", "an expired request keeps no credential"

    card = latest_card(bot)
    assert_valid_message(card)
    assert buttons(card) == [], "an expired card has no live buttons"
    assert "Expired" in response_text(card) and "can no longer be decided" in response_text(card)
    (dm,) = dms_to(bot, REQUESTER)
    assert "expired" in dm["text"] and "ask again" in response_text(dm)

    # A stale copy of the card (or a slow client) still shows the buttons: the click explains.
    for action in (ids.ACTION_APPROVE, ids.ACTION_DENY):
        opened = bot.slack.count("views.open")
        response, response_url = await bot.click(action, request_id, user_id=APPROVER)
        assert response.status_code == 200
        await bot.settle()
        said = response_text(await answer_to(bot, response_url))
        assert "expired" in said and "no longer be decided" in said
        assert "already decided" not in said
        assert bot.slack.count("views.open") == opened, "no deny form for an expired request"
    assert bot.connect.count(**PUT) == 0

    # Expiry happens once: later passes change nothing and tell no one again.
    await tick(bot, clock, hours=EXPIRY_HOURS)
    assert len(dms_to(bot, REQUESTER)) == 1


async def test_an_expired_username_can_be_requested_again(bot: BotUnderTest, clock: Clock) -> None:
    first = await file_request(bot)
    await tick(bot, clock, hours=EXPIRY_HOURS + 1)
    second = await file_request(bot)
    assert second != first
    assert await state_of(bot, second) is RequestState.PENDING


# -- reminders -------------------------------------------------------------------------------


async def test_one_reminder_per_delay_in_the_cards_thread(bot: BotUnderTest, clock: Clock) -> None:
    request_id = await file_request(bot)
    card_ts = (await bot.runtime.store.get(request_id)).card_ts

    await tick(bot, clock, hours=REMINDER_HOURS - 1)
    assert reminders(bot) == []

    await tick(bot, clock, hours=2)
    (reminder,) = reminders(bot)
    assert reminder["channel"] == APPROVER_CHANNEL and reminder["thread_ts"] == card_ts
    assert_valid_message({"text": reminder["text"], "blocks": reminder["blocks"]})
    assert "waiting for 1 day" in reminder["text"]

    # Not again within the same delay, however often the timers run.
    await tick(bot, clock)
    await tick(bot, clock, hours=12)
    await tick(bot, clock, hours=REMINDER_HOURS - 12 - 1)
    assert len(reminders(bot)) == 1

    # A whole delay after the last one, the next.
    await tick(bot, clock, hours=1, minutes=1)
    assert len(reminders(bot)) == 2
    assert "waiting for 2 days" in reminders(bot)[-1]["text"]
    assert await state_of(bot, request_id) is RequestState.PENDING


async def test_decided_requests_are_not_reminded_about(bot: BotUnderTest, clock: Clock) -> None:
    request_id = await file_request(bot)
    await approve(bot, request_id)
    await tick(bot, clock, hours=REMINDER_HOURS * 2 + 1)
    assert reminders(bot) == []


async def test_a_reminder_owed_for_a_request_decided_meanwhile_is_dropped(
    bot: BotUnderTest, clock: Clock
) -> None:
    request_id = await file_request(bot)
    clock.advance(hours=REMINDER_HOURS + 1)
    store = bot.runtime.store
    # The timer claimed the reminder, then the request was decided before delivery.
    claimed = await store.claim_reminder(
        request_id,
        now=clock(),
        due_before=clock() - timedelta(hours=REMINDER_HOURS),
        outbox=[OutboxItem(OutboxKind.REMIND_APPROVERS)],
    )
    assert claimed is not None
    await store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.DENIED,
        now=clock(),
        changes={"decided_by": APPROVER, "deny_reason": "no"},
    )
    await bot.settle()
    assert reminders(bot) == []


async def test_the_runtime_runs_the_timers_by_itself(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str, clock: Clock
) -> None:
    settings = lifecycle_settings(
        fake_slack, fake_connect, database_url, timers_interval_seconds=0.05
    )
    running = await start_bot(settings, fake_slack, fake_connect, clock=clock)
    try:
        await file_request(running)
        clock.advance(hours=REMINDER_HOURS + 1)
        await fake_slack.wait_for(
            "chat.postMessage", predicate=lambda c: bool(c.args.get("thread_ts"))
        )
        await asyncio.sleep(0.3)  # several more passes
        await running.settle()
        assert len(reminders(running)) == 1
    finally:
        await running.stop()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_replicas_send_one_reminder(
    backend: str,
    fake_slack: FakeSlack,
    fake_connect: FakeConnect,
    tmp_path: Path,
    clock: Clock,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if backend == "postgres":
            url = await stack.enter_async_context(postgres_schema())
        else:
            url = f"sqlite:///{tmp_path / 'shared.db'}"
        settings = lifecycle_settings(fake_slack, fake_connect, url)
        bots = []
        for n in range(2):
            running = await start_bot(
                settings, fake_slack, fake_connect, instance_id=f"replica-{n}", clock=clock
            )
            stack.push_async_callback(running.stop)
            bots.append(running)

        request_id = await file_request(bots[0])
        clock.advance(hours=REMINDER_HOURS + 1)
        passes = [bot.runtime.timers.run() for bot in bots for _ in range(3)]
        reports = await asyncio.gather(*passes)
        for bot in bots:
            await bot.settle()
        assert [r.reminded for r in reports].count((request_id,)) == 1
        assert len(reminders(bots[0])) == 1

        clock.advance(hours=EXPIRY_HOURS)
        reports = await asyncio.gather(*(bot.runtime.timers.run() for bot in bots))
        for bot in bots:
            await bot.settle()
        assert [r.expired for r in reports].count((request_id,)) == 1
        assert len(dms_to(bots[0], REQUESTER)) == 1
        assert len(reminders(bots[0])) == 1


# -- cancel ----------------------------------------------------------------------------------


async def test_the_requester_cancels_from_the_confirmation(bot: BotUnderTest) -> None:
    view, click_url = await open_request_form(bot, "julie2")
    await submit_request(bot, view, "Needs to publish the quarterly report.")
    confirmation = await answer_to(bot, click_url)
    (cancel,) = [x for x in buttons(confirmation) if x["action_id"] == ids.ACTION_CANCEL]
    request_id = cancel["value"]
    updates = bot.slack.count("chat.update")

    # Nobody else may: not an outsider, not an approver (approvers deny instead).
    for someone in (OUTSIDER, APPROVER):
        response, response_url = await bot.click(
            ids.ACTION_CANCEL, request_id, user_id=someone, ephemeral=True, channel_id="CGEN"
        )
        assert response.status_code == 200
        await bot.settle()
        refusal = await answer_to(bot, response_url)
        assert "Only the person who asked" in response_text(refusal)
        assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    assert await state_of(bot, request_id) is RequestState.PENDING
    assert bot.slack.count("chat.update") == updates

    response, response_url = await bot.click(
        ids.ACTION_CANCEL, request_id, user_id=REQUESTER, ephemeral=True, channel_id="CGEN"
    )
    await bot.settle()
    answer = await answer_to(bot, response_url)
    assert answer["replace_original"] is True, "the button that no longer applies goes away"
    assert "You cancelled" in response_text(answer) and buttons(answer) == []
    assert await state_of(bot, request_id) is RequestState.CANCELLED

    card = latest_card(bot)
    assert_valid_message(card)
    assert buttons(card) == []
    assert f"Cancelled by <@{REQUESTER}>" in response_text(card)

    approve_url = await approve(bot, request_id)
    assert "requester cancelled" in response_text(await answer_to(bot, approve_url))
    assert bot.connect.count(**PUT) == 0
    assert dms_to(bot, REQUESTER) == [], "the requester knows: they clicked"


async def test_a_decided_request_cannot_be_cancelled(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await approve(bot, request_id)
    response, response_url = await bot.click(
        ids.ACTION_CANCEL, request_id, user_id=REQUESTER, ephemeral=True
    )
    assert response.status_code == 200
    await bot.settle()
    said = response_text(await answer_to(bot, response_url))
    assert "can no longer be cancelled: it is approved" in said
    assert await state_of(bot, request_id) is RequestState.APPROVED


# -- /connect-user status and pending --------------------------------------------------------


async def test_status_lists_the_callers_requests_newest_first(
    bot: BotUnderTest, clock: Clock
) -> None:
    first = await file_request(bot, "julie2")
    clock.advance(minutes=5)
    second = await file_request(bot, "bob1")
    await approve(bot, first)

    message = await command(bot, "status", REQUESTER)
    text = response_text(message)
    assert text.index("bob1") < text.index("julie2")
    assert "waiting for an approver" in text and "approved" in text
    assert [(x["action_id"], x["value"]) for x in buttons(message)] == [(ids.ACTION_CANCEL, second)]
    assert text.count(f"https://test.slack.com/archives/{APPROVER_CHANNEL}/") == 2

    # The Cancel button in the list works like the one in the confirmation.
    response, response_url = await bot.click(
        ids.ACTION_CANCEL, second, user_id=REQUESTER, ephemeral=True
    )
    assert response.status_code == 200
    await bot.settle()
    assert "You cancelled" in response_text(await answer_to(bot, response_url))

    assert "haven't requested" in response_text(await command(bot, "status", OUTSIDER))


async def test_pending_is_for_approvers_oldest_first(bot: BotUnderTest, clock: Clock) -> None:
    assert "Nothing is waiting" in response_text(await command(bot, "pending", APPROVER))
    await file_request(bot, "julie2")
    clock.advance(minutes=5)
    await file_request(bot, "bob1")

    message = await command(bot, "pending", APPROVER)
    text = response_text(message)
    assert "Waiting for approval (2)" in text
    assert text.index("julie2") < text.index("bob1")
    assert text.count(f"https://test.slack.com/archives/{APPROVER_CHANNEL}/") == 2

    for someone in (OUTSIDER, REQUESTER):
        refusal = response_text(await command(bot, "pending", someone))
        assert "only approvers" in refusal and "julie2" not in refusal


async def test_long_lists_stay_within_slacks_limits(bot: BotUnderTest) -> None:
    await store_requests(bot, 60)
    for text, who in (("pending", APPROVER), ("status", REQUESTER)):
        message = await command(bot, text, who)
        assert len(message["blocks"]) <= 50
        footer = response_text({"blocks": message["blocks"][-1:]})
        assert "…and " in footer and " more" in footer


async def test_pending_with_arguments_explains_usage(bot: BotUnderTest) -> None:
    message = await command(bot, "pending please", APPROVER)
    assert "takes nothing" in response_text(message) and "/connect-user status" in response_text(
        message
    )


# -- the App Home tab -------------------------------------------------------------------------


async def test_home_tab_shows_own_requests_and_what_waits_for_approvers(
    bot: BotUnderTest,
) -> None:
    request_id = await file_request(bot)

    mine = await open_home(bot, REQUESTER)
    text = response_text(mine)
    assert "My requests" in text and "julie2" in text and "Waiting for approval" not in text
    assert [(x["action_id"], x["value"]) for x in request_buttons(mine)] == [
        (ids.ACTION_CANCEL, request_id)
    ]

    theirs = await open_home(bot, APPROVER)
    text = response_text(theirs)
    assert "Waiting for approval (1)" in text and "haven't requested" in text
    assert [(x["action_id"], x["value"]) for x in request_buttons(theirs)] == [
        (ids.ACTION_APPROVE, request_id),
        (ids.ACTION_DENY, request_id),
    ]
    assert f"https://test.slack.com/archives/{APPROVER_CHANNEL}/" in text

    outsider = await open_home(bot, OUTSIDER)
    assert "Waiting for approval" not in response_text(outsider) and request_buttons(outsider) == []

    assert await open_home(bot, REQUESTER, tab="messages") is None


async def test_approve_on_the_home_tab_follows_the_cards_rules(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await open_home(bot, APPROVER)

    # The requester is refused as on the card; the answer appears on their Home tab.
    await home_click(bot, ids.ACTION_APPROVE, request_id, REQUESTER)
    assert "your own request" in response_text(home_of(bot, REQUESTER))
    await home_click(bot, ids.ACTION_APPROVE, request_id, OUTSIDER)
    assert "approver channel" in response_text(home_of(bot, OUTSIDER))
    assert bot.connect.count(**PUT) == 0
    assert bot.slack.count("chat.postEphemeral") == 0

    await home_click(bot, ids.ACTION_APPROVE, request_id, APPROVER)
    # The request sets a role: the click opened the confirmation (the role asked preselected).
    confirmation = bot.slack.last("views.open").args["view"]
    assert confirmation["callback_id"] == ids.VIEW_APPROVE
    await submit_approval(bot, confirmation)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.decided_by == APPROVER
    assert bot.connect.count(**PUT) == 1
    assert "Approved by" in response_text(latest_card(bot))
    home = response_text(home_of(bot, APPROVER))
    assert "Your decision was recorded" in home and "Nothing is waiting" in home

    # A second approver's stale Home tab: refused, exactly as a second click on the card.
    await home_click(bot, ids.ACTION_APPROVE, request_id, APPROVER_2)
    assert "already decided (approved)" in response_text(home_of(bot, APPROVER_2))
    assert bot.connect.count(**PUT) == 1
    assert len(dms_to(bot, REQUESTER)) == 1


async def test_home_refusals_fall_back_to_a_dm(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    bot.slack.fail("views.publish", error="internal_error")
    await home_click(bot, ids.ACTION_APPROVE, request_id, OUTSIDER)
    (dm,) = dms_to(bot, OUTSIDER)
    assert "approver channel" in response_text(dm)


async def test_deny_on_the_home_tab_opens_the_same_form(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await home_click(bot, ids.ACTION_DENY, request_id, APPROVER)
    modal = bot.slack.last("views.open").args["view"]
    assert modal["callback_id"] == ids.VIEW_DENY_REASON
    assert modal["private_metadata"] == request_id
    response = await bot.submit(
        ids.VIEW_DENY_REASON,
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: "No budget"}},
        request_id,
        user_id=APPROVER,
    )
    assert response.status_code == 200
    await bot.settle()
    assert await state_of(bot, request_id) is RequestState.DENIED
    assert "denied" in dms_to(bot, REQUESTER)[-1]["text"]


async def test_cancel_on_the_home_tab(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await home_click(bot, ids.ACTION_CANCEL, request_id, APPROVER)
    assert "Only the person who asked" in response_text(home_of(bot, APPROVER))
    assert await state_of(bot, request_id) is RequestState.PENDING

    await home_click(bot, ids.ACTION_CANCEL, request_id, REQUESTER)
    assert await state_of(bot, request_id) is RequestState.CANCELLED
    home = home_of(bot, REQUESTER)
    assert "You cancelled" in response_text(home) and "cancelled" in response_text(home)
    assert request_buttons(home) == []
    assert "Cancelled by" in response_text(latest_card(bot))


async def test_home_tab_stays_within_limits(bot: BotUnderTest) -> None:
    await store_requests(bot, 60, requester=REQUESTER, prefix="theirs")
    await store_requests(bot, 15, requester=APPROVER, prefix="mine")
    view = await open_home(bot, APPROVER)
    assert len(view["blocks"]) <= 100
    text = response_text(view)
    assert "Waiting for approval (75)" in text
    assert "`/connect-user pending` lists them all" in text
    assert "`/connect-user status` lists them" in text


# -- the manifest ----------------------------------------------------------------------------


def test_manifest_enables_the_home_tab_and_its_event() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True and home["messages_tab_enabled"] is True
    events = manifest["settings"]["event_subscriptions"]
    assert "app_home_opened" in events["bot_events"]  # the rest: tests/unit/test_manifest.py
    assert events["request_url"].endswith("/slack/events")


# -- escalation ----------------------------------------------------------------------------------

ESCALATION_CHANNEL = "CESCALATE"
ESCALATE_HOURS = 4.5


def escalations(bot: BotUnderTest) -> list[dict]:
    return [
        c.args
        for c in bot.slack.calls_to("chat.postMessage")
        if c.ok and c.args["channel"] == ESCALATION_CHANNEL
    ]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_request_nobody_decides_is_escalated_once(
    backend: str,
    fake_slack: FakeSlack,
    fake_connect: FakeConnect,
    tmp_path: Path,
    clock: Clock,
) -> None:
    fake_slack.add_channel(ESCALATION_CHANNEL, is_private=True, members=["U0BOT"])
    fake_connect.add_directory_user("bob1", "Bob", "Builder", "bob1@example.com")
    async with contextlib.AsyncExitStack() as stack:
        if backend == "postgres":
            url = await stack.enter_async_context(postgres_schema())
        else:
            url = f"sqlite:///{tmp_path / 'shared.db'}"
        settings = lifecycle_settings(
            fake_slack,
            fake_connect,
            url,
            escalate_after_hours=ESCALATE_HOURS,
            slack_escalation_channel=ESCALATION_CHANNEL,
        )
        bots = []
        for n in range(2):
            running = await start_bot(
                settings, fake_slack, fake_connect, instance_id=f"replica-{n}", clock=clock
            )
            stack.push_async_callback(running.stop)
            bots.append(running)

        request_id = await file_request(bots[0])
        decided_id = await file_request(bots[0], "bob1")
        await approve(bots[0], decided_id)
        clock.advance(hours=ESCALATE_HOURS - 0.5)
        assert not [
            r.escalated
            for r in await asyncio.gather(*(b.runtime.timers.run() for b in bots))
            if r.escalated
        ]

        clock.advance(hours=1)
        passes = [bot.runtime.timers.run() for bot in bots for _ in range(3)]
        reports = await asyncio.gather(*passes)
        for bot in bots:
            await bot.settle()
        assert [r.escalated for r in reports].count((request_id,)) == 1
        [posted] = escalations(bots[0])
        text = response_text(posted)
        assert "no approver has decided it" in text and f"<@{REQUESTER}>" in text
        assert "View the request" in text, "links to the card"
        request = await bots[0].runtime.store.get(request_id)
        assert request.escalated_at is not None and request.state is RequestState.PENDING

        clock.advance(hours=ESCALATE_HOURS * 3)
        await asyncio.gather(*(bot.runtime.timers.run() for bot in bots))
        for bot in bots:
            await bot.settle()
        assert len(escalations(bots[0])) == 1, "once, however long it waits"
