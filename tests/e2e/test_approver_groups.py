"""Approver user groups through signed Slack requests: SLACK_APPROVER_USERGROUP decides who may
decide (the channel only receives the cards, and may then be public), SLACK_ADMIN_APPROVER_USERGROUP
who may decide requests granting Administrator; subteam_members_changed takes a right away at once;
`check` reads the groups."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator

import pytest

from bot.check import run_checks
from bot.workflow.states import RequestState
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
    BotUnderTest,
    make_settings,
    response_text,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.flows import PUT, approve, click_approve, file_request
from tests.support.slack_requests import event_callback_body

APPROVERS_GROUP = "SAPPROVERS"
ADMINS_GROUP = "SADMINS"
OUTSIDE_CHANNEL = "UGROUPONLY"  # in the user group, not in the approver channel


@pytest.fixture
async def grouped(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> AsyncIterator[BotUnderTest]:
    fake_slack.add_user(OUTSIDE_CHANNEL)
    fake_slack.add_usergroup(APPROVERS_GROUP, [APPROVER, OUTSIDE_CHANNEL])
    fake_slack.add_usergroup(ADMINS_GROUP, [OUTSIDE_CHANNEL])
    # A public approver channel is acceptable when the group is the boundary.
    fake_slack.add_channel(
        APPROVER_CHANNEL, is_private=False, members=["U0BOT", APPROVER, APPROVER_2]
    )
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        slack_approver_usergroup=APPROVERS_GROUP,
        slack_admin_approver_usergroup=ADMINS_GROUP,
        requestable_roles="viewer,publisher,administrator",
    )
    running = await start_bot(settings, fake_slack, fake_connect)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await running.stop()


async def refusal_to(bot: BotUnderTest, response_url: str) -> str:
    return response_text((await bot.slack.wait_for_response(response_url))[-1])


async def test_only_the_groups_members_decide(grouped: BotUnderTest) -> None:
    bot = grouped
    request_id = await file_request(bot, role="publisher")
    # In the channel, not in the group: refused.
    refusal = await refusal_to(bot, await approve(bot, request_id, user_id=APPROVER_2))
    assert "user group" in refusal
    assert bot.connect.count(**PUT) == 0
    # In the group, not in the channel: decides.
    await approve(bot, request_id, user_id=OUTSIDE_CHANNEL)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED


async def test_administrator_needs_the_admin_group(grouped: BotUnderTest) -> None:
    bot = grouped
    request_id = await file_request(bot, role="administrator")
    view, url = await click_approve(bot, request_id, APPROVER)
    assert view is None
    assert "Administrator role" in await refusal_to(bot, url)
    await approve(bot, request_id, user_id=OUTSIDE_CHANNEL)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.role_granted == "administrator"


async def test_a_group_change_takes_the_right_away_at_once(grouped: BotUnderTest) -> None:
    bot = grouped
    request_id = await file_request(bot, role="publisher")
    view, _ = await click_approve(bot, request_id, APPROVER)  # APPROVER's right is now known
    assert view is not None
    bot.slack.add_usergroup(APPROVERS_GROUP, [OUTSIDE_CHANNEL])
    response = await bot.post(
        event_callback_body(
            {"type": "subteam_members_changed", "subteam_id": APPROVERS_GROUP, "team_id": "T0001"}
        )
    )
    assert response.status_code == 200
    await bot.settle()
    refusal = await refusal_to(bot, await approve(bot, request_id, user_id=APPROVER))
    assert "user group" in refusal
    assert bot.connect.count(**PUT) == 0


async def test_check_reads_the_groups(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> None:
    fake_slack.add_usergroup(APPROVERS_GROUP, [APPROVER, APPROVER_2])
    settings = make_settings(
        fake_slack, fake_connect, database_url, slack_approver_usergroup=APPROVERS_GROUP
    )
    out = io.StringIO()
    await run_checks(settings, out)
    assert f"SLACK_APPROVER_USERGROUP {APPROVERS_GROUP} has 2 member(s)" in out.getvalue()

    fake_slack.usergroups_plan = False
    out = io.StringIO()
    assert await run_checks(settings, out) == 1
    assert "need a paid Slack plan (plan_upgrade_required)" in out.getvalue()


async def test_check_reads_the_escalation_channel(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> None:
    fake_slack.add_channel("CESCALATE", is_private=False, is_member=False)
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        escalate_after_hours=4,
        slack_escalation_channel="CESCALATE",
    )
    out = io.StringIO()
    assert await run_checks(settings, out) == 1
    assert "the bot is not in the escalation channel CESCALATE: invite it there" in out.getvalue()
    fake_slack.add_channel("CESCALATE", is_private=False, is_member=True)
    out = io.StringIO()
    await run_checks(settings, out)
    assert "requests nobody decides are escalated in CESCALATE" in out.getvalue()
