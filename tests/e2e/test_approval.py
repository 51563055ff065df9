"""The approval gate end to end: request → card → exactly-once PUT → notifications."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.slack.ui import ids
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message, assert_valid_view
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
    OUTSIDER,
    REQUESTER,
    BotUnderTest,
    response_text,
    start_bot,
)
from tests.support.flows import (
    PUT,
    approve,
    card_request_id,
    click_approve,
    dms_to,
    file_request,
    latest_card,
    open_request_form,
    request_button,
    role_state,
    submit_request,
)

HOUR = timedelta(hours=1)


# -- request ---------------------------------------------------------------------------------


async def test_request_posts_a_card_and_confirms_to_the_requester(bot: BotUnderTest) -> None:
    view, click_url = await open_request_form(bot, "julie2")
    assert "julie2" in json.dumps(view)
    await submit_request(bot, view, "Needs to publish the quarterly report.")

    card = bot.slack.calls_to("chat.postMessage")[-1].args
    assert card["channel"] == APPROVER_CHANNEL
    assert_valid_message(card)
    request_id = card_request_id(card)
    request = await bot.runtime.store.get(request_id)
    assert request is not None and request.state is RequestState.PENDING
    assert request.requester_id == REQUESTER and request.justification.startswith("Needs")
    assert request.card_ts == bot.slack.calls_to("chat.postMessage")[-1].response["ts"]
    # The card carries only the request id: the ticket stays in the store.
    assert request.temp_ticket and request.temp_ticket not in json.dumps(card)
    assert "quarterly report" in response_text(card)

    confirmation = (await bot.slack.wait_for_response(click_url))[-1]
    assert confirmation["replace_original"] is True
    assert "https://test.slack.com/archives/" in response_text(confirmation)
    assert bot.connect.count(**PUT) == 0, "nothing is created before approval"


async def test_empty_justification_is_refused_in_the_form(bot: BotUnderTest) -> None:
    view, _ = await open_request_form(bot, "julie2")
    response = await submit_request(bot, view, "   ")
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors"
    assert bot.slack.count("chat.postMessage") == 0


async def test_broken_button_value_gets_a_clear_answer(bot: BotUnderTest) -> None:
    response, response_url = await bot.click(
        ids.ACTION_REQUEST_ACCOUNT, "{not json", user_id=REQUESTER, ephemeral=True
    )
    assert response.status_code == 200
    await bot.settle()
    answer = (await bot.slack.wait_for_response(response_url))[0]
    assert "search again" in response_text(answer).lower()
    assert bot.slack.count("views.open") == 0


async def test_expired_trigger_is_explained(bot: BotUnderTest) -> None:
    value = await request_button(bot, "julie2")
    bot.slack.fail("views.open", error="expired_trigger_id")
    _, response_url = await bot.click(
        ids.ACTION_REQUEST_ACCOUNT, value, user_id=REQUESTER, ephemeral=True
    )
    await bot.settle()
    assert "press the button again" in response_text(
        (await bot.slack.wait_for_response(response_url))[0]
    )


async def test_duplicate_request_points_to_the_existing_card(bot: BotUnderTest) -> None:
    await file_request(bot)
    cards_before = bot.slack.count("chat.postMessage")
    view, click_url = await open_request_form(bot, "julie2", user_id=OUTSIDER)
    await submit_request(bot, view, "Me too", user_id=OUTSIDER)
    assert bot.slack.count("chat.postMessage") == cards_before
    answer = (await bot.slack.wait_for_response(click_url))[-1]
    assert "https://test.slack.com/archives/" in response_text(answer)


async def test_person_who_got_an_account_meanwhile_is_not_filed(bot: BotUnderTest) -> None:
    view, click_url = await open_request_form(bot, "julie2")
    bot.connect.add_local_user("julie2", "Julie", "Jolly", "julie2@example.com")
    await submit_request(bot, view, "please")
    assert bot.slack.count("chat.postMessage") == 0
    assert "already has" in response_text((await bot.slack.wait_for_response(click_url))[-1])


# -- approve ---------------------------------------------------------------------------------


async def test_approve_creates_the_account_once_and_tells_everyone(bot: BotUnderTest) -> None:
    bot.slack.add_user("UJULIE2", email="julie2@example.com")
    request_id = await file_request(bot)
    await approve(bot, request_id)

    assert bot.connect.count(**PUT) == 1
    guid = bot.connect.get_local_user("julie2")["guid"]
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert request.connect_guid == guid and request.decided_by == APPROVER
    assert request.decided_at is not None

    card = latest_card(bot)
    assert_valid_message(card)
    assert guid in response_text(card)
    assert f"<@{APPROVER}>" in response_text(card)
    assert "/connect/#/people/" + guid in response_text(card)
    assert not [b for b in card["blocks"] if b.get("type") == "actions"], "buttons gone"

    requester_dm = dms_to(bot, REQUESTER)
    assert requester_dm and guid in response_text(requester_dm[-1])
    welcome = dms_to(bot, "UJULIE2")
    assert len(welcome) == 1 and bot.connect.url.rstrip("/") in response_text(welcome[0])


async def test_no_welcome_when_the_person_is_not_in_the_workspace(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await approve(bot, request_id)
    # Once at filing (who the request is for), once for the welcome (they may have joined since).
    assert bot.slack.count("users.lookupByEmail") == 2
    assert len(dms_to(bot, REQUESTER)) == 1
    assert {call.args["channel"] for call in bot.slack.calls_to("chat.postMessage")} == {
        APPROVER_CHANNEL,
        f"D{REQUESTER}",
    }


async def test_concurrent_clicks_make_exactly_one_put(bot: BotUnderTest) -> None:
    bot.connect.key_role = "publisher"  # no role is set: Approve decides with one click
    request_id = await file_request(bot)
    bot.connect.latency = 0.2
    clicks = [
        bot.click(ids.ACTION_APPROVE, request_id, user_id=user)
        for user in [APPROVER, APPROVER_2] * 10
    ]
    responses = await asyncio.gather(*clicks)
    assert all(response.status_code == 200 for response, _ in responses)
    await bot.settle()
    assert bot.slack.count("views.open") == 1, "only the request form: no confirmation"
    assert bot.connect.count(**PUT) == 1
    assert len(dms_to(bot, REQUESTER)) == 1
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED


async def test_concurrent_confirmations_make_exactly_one_put_and_one_role_change(
    bot: BotUnderTest,
) -> None:
    request_id = await file_request(bot, role="publisher")
    view, _ = await click_approve(bot, request_id)
    bot.connect.latency = 0.2
    submissions = [
        bot.submit(
            ids.VIEW_APPROVE,
            {ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state("publisher")}},
            view["private_metadata"],
            user_id=user,
        )
        for user in [APPROVER, APPROVER_2] * 10
    ]
    responses = await asyncio.gather(*submissions)
    assert all(response.status_code == 200 for response in responses)
    await bot.settle()
    assert bot.connect.count(**PUT) == 1
    assert bot.connect.count("PUT", "/__api__/v1/users/*") == 1
    assert bot.connect.get_local_user("julie2")["user_role"] == "publisher"
    assert len(dms_to(bot, REQUESTER)) == 1
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED


@pytest.mark.parametrize(
    ("clicker", "expected"),
    [(REQUESTER, "your own request"), (OUTSIDER, "approver channel")],
)
async def test_only_approvers_other_than_the_requester(
    bot: BotUnderTest, clicker: str, expected: str
) -> None:
    bot.slack.set_channel_members(APPROVER_CHANNEL, ["U0BOT", APPROVER, REQUESTER])
    request_id = await file_request(bot)
    response_url = await approve(bot, request_id, user_id=clicker)
    assert expected in response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert bot.connect.count(**PUT) == 0
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING


async def test_member_on_a_later_page_of_the_channel_may_approve(bot: BotUnderTest) -> None:
    bot.slack.members_page_size = 2
    many = [f"UMEMBER{n:03d}" for n in range(7)]
    bot.slack.set_channel_members(APPROVER_CHANNEL, ["U0BOT", *many, "ULASTPAGE"])
    bot.slack.add_user("ULASTPAGE")
    request_id = await file_request(bot)
    await approve(bot, request_id, user_id="ULASTPAGE")
    assert bot.connect.count(**PUT) == 1
    assert bot.slack.count("conversations.members") >= 5


async def test_click_on_a_decided_card_changes_nothing(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await approve(bot, request_id)
    response_url = await approve(bot, request_id, user_id=APPROVER_2)
    assert "already decided" in response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert bot.connect.count(**PUT) == 1


async def test_unknown_request_id(bot: BotUnderTest) -> None:
    response_url = await approve(bot, "0123456789abcdef")
    assert "no longer exists" in response_text(
        (await bot.slack.wait_for_response(response_url))[-1]
    )
    response_url = await approve(bot, "'; drop table --")
    assert "no longer exists" in response_text(
        (await bot.slack.wait_for_response(response_url))[-1]
    )


# -- Connect's answers to the PUT ------------------------------------------------------------


async def test_username_in_use_reports_the_existing_account(bot: BotUnderTest) -> None:
    bot.slack.add_user("UJULIE2", email="julie2@example.com")
    request_id = await file_request(bot)
    # Created (by someone else) well before the bot asked Connect for it.
    guid = bot.connect.add_local_user(
        "julie2", "Julie", "Jolly", "julie2@example.com", created_time=datetime.now(UTC) - HOUR
    )
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.ALREADY_EXISTS and request.connect_guid == guid
    assert request.outcome_note is None
    assert not dms_to(bot, "UJULIE2"), "nobody is welcomed to an account they already had"
    assert guid in response_text(latest_card(bot))
    assert guid in response_text(dms_to(bot, REQUESTER)[-1])


async def test_stale_ticket_is_renewed_and_retried_once(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    bot.connect.invalidate_tickets()
    await approve(bot, request_id)
    assert bot.connect.count(**PUT) == 2
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (119, "login provider cannot create accounts"),
        (132, "login provider cannot do this"),
        (21, "lacks the permission"),
        (24, "rejected the bot's API key"),
        (64, "licence has no free seats"),
        (107, "policy prohibits this username"),
        (7, "does not permit this username"),
        (76, "same unique ID already exists"),
    ],
)
async def test_refusals_are_explained_and_leave_the_request_approvable(
    bot: BotUnderTest, code: int, words: str
) -> None:
    request_id = await file_request(bot)
    bot.connect.put_error_code = code
    response_url = await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING
    assert words in request.last_error
    card = latest_card(bot)
    assert words in response_text(card)
    assert [b for b in card["blocks"] if b.get("type") == "actions"], "Approve is still live"
    assert words in response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert f"Connect code {code}" in response_text(card)
    assert all(words not in response_text(dm) for dm in dms_to(bot, REQUESTER))

    bot.connect.put_error_code = None
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED


async def test_a_code_without_words_shows_the_approver_connects_message_only(
    bot: BotUnderTest,
) -> None:
    request_id = await file_request(bot)
    bot.connect.refuse_next("PUT v1/users", 998, status=400, message="Widgets are exhausted.")
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING
    assert "Widgets are exhausted." in response_text(latest_card(bot))
    assert all("Widgets" not in response_text(dm) for dm in dms_to(bot, REQUESTER))


async def test_timeout_after_commit_is_settled_as_approved(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    bot.connect.put_mode = "commit_then_hang"
    await approve(bot, request_id)
    assert bot.connect.count(**PUT) == 1, "a PUT with an unknown outcome is never repeated blindly"
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert request.connect_guid == bot.connect.get_local_user("julie2")["guid"]


async def test_server_error_without_commit_goes_back_to_pending(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    bot.connect.put_mode = "fail_500"
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING and "no account was created" in request.last_error
    assert bot.connect.count(**PUT) == 1
    bot.connect.put_mode = "normal"
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED


async def test_connect_down_during_put_and_lookup_is_settled_later(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    bot.connect.put_mode = "commit_then_500"
    bot.connect.fail_next("GET v1/users", 503, times=1000)  # down for every look-up
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PROVISIONING, "unknown outcome: not guessed"
    assert "look again" in request.last_error
    bot.connect.reset_faults()
    await bot.runtime.provisioner.recover_expired_leases()
    await bot.settle()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert bot.connect.count(**PUT) == 1
    assert len(dms_to(bot, REQUESTER)) == 1


# -- deny ------------------------------------------------------------------------------------


async def test_deny_with_a_reason(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    opened = bot.slack.count("views.open")
    await bot.click(ids.ACTION_DENY, request_id, user_id=APPROVER)
    view = (await bot.slack.wait_for("views.open", count=opened + 1))[-1].args["view"]
    await bot.settle()
    assert_valid_view(view)
    assert view["private_metadata"] == request_id
    empty = await bot.submit(
        ids.VIEW_DENY_REASON,
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: " "}},
        view["private_metadata"],
        user_id=APPROVER,
    )
    assert empty.json()["response_action"] == "errors"
    await bot.submit(
        ids.VIEW_DENY_REASON,
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: "Contractor; use the shared account."}},
        view["private_metadata"],
        user_id=APPROVER,
    )
    await bot.settle()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.DENIED and request.decided_by == APPROVER
    assert "shared account" in response_text(latest_card(bot))
    assert "shared account" in response_text(dms_to(bot, REQUESTER)[-1])
    assert bot.connect.count(**PUT) == 0


async def test_deny_refused_for_non_approvers_before_the_form(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    opened = bot.slack.count("views.open")
    _, response_url = await bot.click(ids.ACTION_DENY, request_id, user_id=OUTSIDER)
    await bot.settle()
    assert bot.slack.count("views.open") == opened
    assert "approver channel" in response_text(
        (await bot.slack.wait_for_response(response_url))[-1]
    )


async def test_deny_submission_is_checked_again(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    await bot.submit(
        ids.VIEW_DENY_REASON,
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: "no"}},
        request_id,
        user_id=OUTSIDER,
    )
    await bot.settle()
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING
    ephemeral = bot.slack.calls_to("chat.postEphemeral") + bot.slack.calls_to("chat.postMessage")
    assert any("approver channel" in response_text(call.args) for call in ephemeral)


# -- restarts --------------------------------------------------------------------------------


async def test_request_survives_a_restart(bot: BotUnderTest, settings) -> None:
    request_id = await file_request(bot)
    await bot.stop()
    restarted = await start_bot(settings, bot.slack, bot.connect, instance_id="test-2")
    try:
        await approve(restarted, request_id)
        assert restarted.connect.count(**PUT) == 1
        assert (await restarted.runtime.store.get(request_id)).state is RequestState.APPROVED
        assert len(dms_to(restarted, REQUESTER)) == 1
    finally:
        await restarted.stop()


async def test_lease_of_a_dead_process_is_settled_by_another(bot: BotUnderTest, settings) -> None:
    request_id = await file_request(bot)
    # A process claimed the request and died right after its PUT went through.
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    claimed = await bot.runtime.store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.PROVISIONING,
        now=now,
        changes={
            "decided_by": APPROVER,
            "decided_at": now,
            "lease_owner": "dead:1",
            "lease_expires_at": now - timedelta(seconds=1),
            "put_sent_at": now - timedelta(seconds=30),
        },
    )
    assert claimed is not None
    guid = bot.connect.add_local_user("julie2", "Julie", "Jolly", "julie2@example.com")
    settled = await bot.runtime.provisioner.recover_expired_leases()
    await bot.settle()
    assert [r.id for r in settled] == [request_id]
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.connect_guid == guid
    assert len(dms_to(bot, REQUESTER)) == 1


async def test_ticket_is_not_kept_after_a_decision(bot: BotUnderTest) -> None:
    approved_id = await file_request(bot, "julie2")
    await approve(bot, approved_id)
    assert (await bot.runtime.store.get(approved_id)).temp_ticket == ""


async def test_a_live_lease_of_another_replica_is_left_alone(bot: BotUnderTest) -> None:
    from datetime import UTC, datetime, timedelta

    request_id = await file_request(bot)
    now = datetime.now(UTC)
    await bot.runtime.store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.PROVISIONING,
        now=now,
        changes={"lease_owner": "other:1", "lease_expires_at": now + timedelta(seconds=60)},
    )
    assert await bot.runtime.provisioner.recover_expired_leases() == []
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PROVISIONING and request.lease_owner == "other:1"
    # Nothing was asked about the person (the card's seat counts are no look-up of theirs).
    about_people = [
        call
        for call in bot.connect.calls_for(path="/__api__/v1/users")
        if "account_status" not in call.query
    ]
    assert about_people == []


async def test_membership_unknown_is_not_taken_for_a_refusal(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    bot.slack.fail("conversations.members", status=500, times=5)
    response_url = await approve(bot, request_id)
    answer = response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert "can't check who may approve" in answer
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING
    assert bot.connect.count(**PUT) == 0


async def test_deactivated_member_may_not_approve(bot: BotUnderTest) -> None:
    bot.slack.add_user("UGONE", deleted=True)
    bot.slack.set_channel_members(APPROVER_CHANNEL, ["U0BOT", APPROVER, "UGONE"])
    request_id = await file_request(bot)
    response_url = await approve(bot, request_id, user_id="UGONE")
    assert "deactivated" in response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert bot.connect.count(**PUT) == 0
