"""Who may decide: full members of the organisation only, a safe approver channel, and answers
fresh enough to trust — through signed requests against the fake Slack."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlencode

import pytest

from bot.runtime import build_runtime
from bot.slack.ui import ids
from bot.workflow.states import RequestState
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
from tests.support.flows import (
    PUT,
    approve,
    command,
    file_request,
    home_click,
    home_of,
    open_home,
    submit_approval,
)
from tests.support.log_guard import CapturingHandler
from tests.support.slack_requests import block_actions_body, event_callback_body

MEMBER = "UMEMBER01"

# Members of the approver channel who are not full members of the organisation, and the words
# that tell them why they may not decide. `is_stranger` is false for the people from other
# organisations: Slack sets it only for people the app cannot see, so it proves nothing.
NOT_DECIDERS = {
    "guest": ({"is_restricted": True}, "Guest accounts"),
    "single-channel guest": ({"is_ultra_restricted": True}, "Guest accounts"),
    "other workspace": ({"team_id": "TOTHERORG", "is_stranger": False}, "another organisation"),
    "other enterprise": (
        {"team_id": "TOTHERORG", "enterprise_id": "EOTHER", "is_stranger": False},
        "another organisation",
    ),
    "bot": ({"is_bot": True}, "Bots and apps"),
    "app user": ({"is_app_user": True}, "Bots and apps"),
    "deactivated": ({"deleted": True}, "deactivated"),
}


def join_approvers(bot: BotUnderTest, *users: str) -> None:
    bot.slack.set_channel_members(APPROVER_CHANNEL, ["U0BOT", APPROVER, APPROVER_2, *users])


async def send_event(bot: BotUnderTest, event: dict) -> None:
    response = await bot.post(event_callback_body(event))
    assert response.status_code == 200
    await bot.settle()


async def refusal_to(bot: BotUnderTest, response_url: str) -> str:
    return response_text((await bot.slack.wait_for_response(response_url))[-1])


async def assert_untouched(bot: BotUnderTest, request_id: str) -> None:
    assert bot.connect.count(**PUT) == 0
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING


# -- only full members of the organisation decide ---------------------------------------------


@pytest.mark.parametrize("kind", NOT_DECIDERS)
async def test_members_who_are_not_full_members_cannot_decide(bot: BotUnderTest, kind: str) -> None:
    profile, words = NOT_DECIDERS[kind]
    bot.slack.add_user(MEMBER, **profile)
    join_approvers(bot, MEMBER)
    request_id = await file_request(bot)

    # Approve on the card.
    assert words in await refusal_to(bot, await approve(bot, request_id, user_id=MEMBER))
    await assert_untouched(bot, request_id)

    # Deny: refused before the form opens…
    opened = bot.slack.count("views.open")
    _, response_url = await bot.click(ids.ACTION_DENY, request_id, user_id=MEMBER)
    await bot.settle()
    assert bot.slack.count("views.open") == opened
    assert words in await refusal_to(bot, response_url)
    # …and again when a (forged or stale) form is submitted.
    await bot.submit(
        ids.VIEW_DENY_REASON,
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: "no"}},
        request_id,
        user_id=MEMBER,
    )
    await bot.settle()
    told = bot.slack.calls_to("chat.postEphemeral") + bot.slack.calls_to("chat.postMessage")
    assert any(words in response_text(call.args) for call in told)
    await assert_untouched(bot, request_id)

    # The Home tab's buttons follow the same rule, and its waiting list is not shown.
    await home_click(bot, ids.ACTION_APPROVE, request_id, MEMBER)
    assert words in json.dumps(home_of(bot, MEMBER))
    await assert_untouched(bot, request_id)
    home = await open_home(bot, MEMBER)
    assert "Waiting for approval" not in json.dumps(home)
    assert words in json.dumps(home)

    # So does `/connect-user pending`.
    pending = response_text(await command(bot, "pending", MEMBER))
    assert words in pending and "julie2" not in pending


async def test_allow_guests_lets_guests_search_but_never_decide(
    fake_slack, fake_connect, database_url
) -> None:
    fake_slack.add_user(MEMBER, is_restricted=True)
    settings = make_settings(fake_slack, fake_connect, database_url, allow_guests=True)
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        join_approvers(bot, MEMBER)
        _, response_url = await bot.command("search julie", user_id=MEMBER)
        await bot.settle()
        assert "julie2" in await refusal_to(bot, response_url)
        request_id = await file_request(bot)
        refusal = await refusal_to(bot, await approve(bot, request_id, user_id=MEMBER))
        assert "Guest accounts" in refusal
        await assert_untouched(bot, request_id)
    finally:
        await bot.stop()


async def test_enterprise_grid_sibling_workspace_decides_and_other_orgs_do_not(
    bot: BotUnderTest,
) -> None:
    """Same enterprise, another workspace: the same organisation. The click carries `team: null`,
    as payloads of org-wide installs do."""
    bot.slack.enterprise_id = "EHOME"
    bot.slack.add_user("USIBLING1", team_id="TSIBLING", enterprise_id="EHOME", is_stranger=False)
    bot.slack.add_user("UFOREIGN1", team_id="TFOREIGN", enterprise_id="EFOREIGN", is_stranger=False)
    join_approvers(bot, "USIBLING1", "UFOREIGN1")
    request_id = await file_request(bot)

    async def grid_click(user_id: str) -> str:
        response_url = bot.slack.new_response_url()
        body = block_actions_body(
            action_id=ids.ACTION_APPROVE,
            value=request_id,
            user_id=user_id,
            response_url=response_url,
            channel_id=APPROVER_CHANNEL,
        )
        payload = json.loads(parse_qs(body)["payload"][0])
        payload["team"] = None
        payload["is_enterprise_install"] = True
        payload["enterprise"] = {"id": "EHOME", "name": "Home Org"}
        payload["user"]["team_id"] = bot.slack._users[user_id]["team_id"]
        response = await bot.post(urlencode({"payload": json.dumps(payload)}))
        assert response.status_code == 200
        await bot.settle()
        return response_url

    refusal = await refusal_to(bot, await grid_click("UFOREIGN1"))
    assert "another organisation" in refusal
    await assert_untouched(bot, request_id)
    await grid_click("USIBLING1")
    # The request sets a role: the click opened the confirmation, submitted by the same person.
    await submit_approval(bot, bot.slack.last("views.open").args["view"], user_id="USIBLING1")
    assert bot.connect.count(**PUT) == 1
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.decided_by == "USIBLING1"


async def test_decisions_are_refused_when_the_bots_organisation_is_unknown(
    fake_slack, fake_connect, database_url
) -> None:
    # ALLOW_GUESTS: searching needs no auth.test, so the first one the bot makes is a decision's.
    settings = make_settings(fake_slack, fake_connect, database_url, allow_guests=True)
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        await bot.command("help")  # Bolt's own auth.test happens on the first request
        await bot.settle()
        fake_slack.fail("auth.test", error="internal_error", times=None)
        request_id = await file_request(bot)
        refusal = await refusal_to(bot, await approve(bot, request_id, user_id=APPROVER))
        assert "can't check who may approve" in refusal
        await assert_untouched(bot, request_id)
        # A failure is never kept: once Slack answers, the approver decides.
        fake_slack.clear_faults("auth.test")
        await approve(bot, request_id, user_id=APPROVER)
        assert bot.connect.count(**PUT) == 1
    finally:
        await bot.stop()


# -- search fails closed ----------------------------------------------------------------------


async def search_answer(bot: BotUnderTest, user_id: str = REQUESTER) -> str:
    _, response_url = await bot.command("search julie", user_id=user_id)
    await bot.settle()
    return await refusal_to(bot, response_url)


async def test_search_is_refused_when_auth_test_cannot_answer(bot: BotUnderTest) -> None:
    await bot.command("help")  # Bolt's own auth.test happens on the first request
    await bot.settle()
    bot.slack.fail("auth.test", error="internal_error", times=None)
    answer = await search_answer(bot)
    assert "try again in a minute" in answer and "julie2" not in answer
    assert bot.connect.count(path="/__api__/v1/users/remote") == 0
    # A failure is never kept: once Slack answers, search works.
    bot.slack.clear_faults("auth.test")
    assert "julie2" in await search_answer(bot)


@pytest.mark.parametrize("status", [200, 500])
async def test_search_is_refused_when_users_info_cannot_answer(
    bot: BotUnderTest, status: int
) -> None:
    bot.slack.fail("users.info", status=status, error="internal_error", times=None)
    answer = await search_answer(bot)
    assert "try again in a minute" in answer and "julie2" not in answer
    assert bot.connect.count(path="/__api__/v1/users/remote") == 0


async def test_search_is_refused_for_a_profile_without_a_team(bot: BotUnderTest) -> None:
    bot.slack.add_user("UNOTEAM01", team_id=None, is_stranger=False)
    answer = await search_answer(bot, "UNOTEAM01")
    assert "try again in a minute" in answer and "julie2" not in answer
    assert bot.connect.count(path="/__api__/v1/users/remote") == 0


async def test_search_refuses_other_organisations_without_is_stranger(bot: BotUnderTest) -> None:
    bot.slack.add_user("UCONNECT1", team_id="TOTHERORG", is_stranger=False)
    answer = await search_answer(bot, "UCONNECT1")
    assert "other organisations" in answer and "julie2" not in answer


# -- a safe approver channel ------------------------------------------------------------------


async def test_a_public_approver_channel_is_refused_at_start(
    fake_slack, fake_connect, database_url
) -> None:
    fake_slack.add_channel(APPROVER_CHANNEL, name="approvers", members=["U0BOT", APPROVER])
    from bot.slack.people import ApproverChannelRefused

    runtime = build_runtime(make_settings(fake_slack, fake_connect, database_url))
    with pytest.raises(ApproverChannelRefused) as refused:
        await runtime.start()
    message = str(refused.value)
    assert APPROVER_CHANNEL in message and "#approvers" in message
    assert "private" in message and "APPROVER_CHANNEL_ALLOW_PUBLIC=true" in message


async def test_a_public_approver_channel_declared_intended_is_used(
    fake_slack, fake_connect, database_url
) -> None:
    fake_slack.add_channel(APPROVER_CHANNEL, members=["U0BOT", APPROVER])
    settings = make_settings(
        fake_slack, fake_connect, database_url, approver_channel_allow_public=True
    )
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        await approve(bot, await file_request(bot))
        assert bot.connect.count(**PUT) == 1
    finally:
        await bot.stop()


async def test_a_channel_made_public_while_running_stops_decisions(
    fake_slack, fake_connect, database_url
) -> None:
    settings = make_settings(
        fake_slack, fake_connect, database_url, approver_check_max_age_seconds=0.2
    )
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        request_id = await file_request(bot)
        fake_slack.add_channel(APPROVER_CHANNEL, is_private=False)
        await asyncio.sleep(0.3)
        refusal = await refusal_to(bot, await approve(bot, request_id))
        assert "approver channel is public" in refusal
        await assert_untouched(bot, request_id)
    finally:
        await bot.stop()


async def test_a_shared_approver_channel_is_reported_at_start(
    fake_slack, fake_connect, database_url, no_secrets_in_logs: CapturingHandler
) -> None:
    fake_slack.add_channel(APPROVER_CHANNEL, is_private=True, is_ext_shared=True)
    bot = await start_bot(
        make_settings(fake_slack, fake_connect, database_url), fake_slack, fake_connect
    )
    try:
        warnings = [text for _, text in no_secrets_in_logs.texts if "shared with another" in text]
        assert warnings and APPROVER_CHANNEL in warnings[0]
        assert "refused" in warnings[0]
    finally:
        await bot.stop()


async def test_channel_shared_event_rechecks_the_channel(
    bot: BotUnderTest, no_secrets_in_logs: CapturingHandler
) -> None:
    before = bot.slack.count("conversations.info")
    bot.slack.add_channel(APPROVER_CHANNEL, is_private=True, is_ext_shared=True)
    await send_event(
        bot,
        {"type": "channel_shared", "connected_team_id": "TOTHERORG", "channel": APPROVER_CHANNEL},
    )
    assert bot.slack.count("conversations.info") == before + 1
    assert any("shared with another" in text for _, text in no_secrets_in_logs.texts)
    # Another channel's sharing is none of the bot's business.
    await send_event(
        bot, {"type": "channel_shared", "connected_team_id": "TOTHERORG", "channel": "CELSE"}
    )
    assert bot.slack.count("conversations.info") == before + 1


async def test_an_unreadable_approver_channel_at_start_refuses_decisions_until_read(
    fake_slack, fake_connect, database_url
) -> None:
    fake_slack.fail("conversations.info", error="internal_error", times=None)
    bot = await start_bot(
        make_settings(fake_slack, fake_connect, database_url), fake_slack, fake_connect
    )
    try:
        request_id = await file_request(bot)
        refusal = await refusal_to(bot, await approve(bot, request_id))
        assert "can't check who may approve" in refusal
        await assert_untouched(bot, request_id)
        fake_slack.clear_faults("conversations.info")
        await approve(bot, request_id)
        assert bot.connect.count(**PUT) == 1
    finally:
        await bot.stop()


# -- answers fresh enough to trust ------------------------------------------------------------


async def test_member_left_channel_event_takes_the_right_away_at_once(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await command(bot, "pending", APPROVER_2)  # APPROVER_2 is an approver: the answer is kept
    bot.slack.set_channel_members(APPROVER_CHANNEL, ["U0BOT", APPROVER])
    await send_event(
        bot,
        {
            "type": "member_left_channel",
            "user": APPROVER_2,
            "channel": APPROVER_CHANNEL,
            "channel_type": "G",
            "team": "T0001",
        },
    )
    refusal = await refusal_to(bot, await approve(bot, request_id, user_id=APPROVER_2))
    assert "Only members of the approver channel" in refusal
    await assert_untouched(bot, request_id)


async def test_member_joined_channel_event_gives_the_right_at_once(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await command(bot, "pending", APPROVER)
    join_approvers(bot, OUTSIDER)
    await send_event(
        bot,
        {"type": "member_joined_channel", "user": OUTSIDER, "channel": APPROVER_CHANNEL},
    )
    await approve(bot, request_id, user_id=OUTSIDER)
    assert bot.connect.count(**PUT) == 1


async def test_user_change_event_takes_a_deactivated_approvers_right_away(
    bot: BotUnderTest,
) -> None:
    request_id = await file_request(bot)
    await command(bot, "pending", APPROVER_2)
    user = bot.slack.add_user(APPROVER_2, deleted=True)
    await send_event(bot, {"type": "user_change", "user": user})
    refusal = await refusal_to(bot, await approve(bot, request_id, user_id=APPROVER_2))
    assert "deactivated" in refusal
    await assert_untouched(bot, request_id)


async def test_without_events_the_maximum_age_still_holds(
    fake_slack, fake_connect, database_url
) -> None:
    settings = make_settings(
        fake_slack, fake_connect, database_url, approver_check_max_age_seconds=0.5
    )
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        request_id = await file_request(bot)
        await command(bot, "pending", APPROVER_2)
        await command(bot, "pending", APPROVER)
        fake_slack.set_channel_members(APPROVER_CHANNEL, ["U0BOT", APPROVER])
        fake_slack.add_user(APPROVER, deleted=True)  # no event reaches the bot
        await asyncio.sleep(0.6)
        refusal = await refusal_to(bot, await approve(bot, request_id, user_id=APPROVER_2))
        assert "Only members of the approver channel" in refusal
        refusal = await refusal_to(bot, await approve(bot, request_id, user_id=APPROVER))
        assert "deactivated" in refusal
        await assert_untouched(bot, request_id)
    finally:
        await bot.stop()


async def test_a_burst_of_clicks_is_one_membership_look_up(bot: BotUnderTest) -> None:
    """`conversations.members` is Tier 4 (~100/min): 20 clicks at once must not be 20 calls."""
    bot.connect.key_role = "publisher"  # no role to set: each click decides, no confirmation
    request_id = await file_request(bot)
    members_before = bot.slack.count("conversations.members")
    profiles_before = bot.slack.count("users.info")
    bot.connect.latency = 0.2
    clicks = [
        bot.click(ids.ACTION_APPROVE, request_id, user_id=user)
        for user in [APPROVER, APPROVER_2] * 10
    ]
    assert all(response.status_code == 200 for response, _ in await asyncio.gather(*clicks))
    await bot.settle()
    assert bot.slack.count("conversations.members") - members_before <= 1
    assert bot.slack.count("users.info") - profiles_before <= 2  # one per clicker
    assert bot.connect.count(**PUT) == 1
