"""The two-person rule through signed Slack requests: APPROVALS_REQUIRED sets how many distinct
approvals a role needs; the card counts them and names who gave them; an approver counts once;
any Deny ends the request; a raise starts the count again under that role's approvers; Connect
is changed when the last approval is recorded. And the approver's note, on the card and in the
requester's message."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator

import pytest

from bot.check import run_checks
from bot.slack.ui import ids
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_view
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
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
    approve,
    click_approve,
    dms_to,
    file_request,
    latest_card,
    role_state,
)

APPROVER_3 = "UAPPROVER3"
ADMINS_GROUP = "SADMINS"
SET_ROLE = ("PUT", "/__api__/v1/users/*")


@pytest.fixture
async def two_for_admin(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> AsyncIterator[BotUnderTest]:
    fake_slack.add_user(APPROVER_3)
    fake_slack.add_channel(
        APPROVER_CHANNEL, is_private=True, members=["U0BOT", APPROVER, APPROVER_2, APPROVER_3]
    )
    # Administrator approvals: APPROVER and APPROVER_3, not APPROVER_2.
    fake_slack.add_usergroup(ADMINS_GROUP, [APPROVER, APPROVER_3])
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        requestable_roles="viewer,publisher,administrator",
        approvals_required="viewer:1,publisher:2,administrator:2",
        slack_admin_approver_usergroup=ADMINS_GROUP,
    )
    running = await start_bot(settings, fake_slack, fake_connect)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await running.stop()


def card_text(bot: BotUnderTest) -> str:
    return json.dumps(latest_card(bot)["blocks"])


async def approve_with_note(
    bot: BotUnderTest, request_id: str, user_id: str, note: str, *, role: str | None = None
) -> str:
    """Press Approve, and submit the confirmation with `note` (and `role`, default: the one
    preselected); returns the click's response_url."""
    view, response_url = await click_approve(bot, request_id, user_id)
    assert view is not None, "Approve opened no confirmation"
    values: dict = {ids.APPROVAL_NOTE_BLOCK: {ids.APPROVAL_NOTE_INPUT: {"value": note}}}
    chosen = role or next(
        b["element"]["initial_option"]["value"]
        for b in view["blocks"]
        if b.get("block_id") == ids.ROLE_BLOCK
    )
    values[ids.ROLE_BLOCK] = {ids.ROLE_INPUT: role_state(chosen)}
    response = await bot.submit(ids.VIEW_APPROVE, values, view["private_metadata"], user_id=user_id)
    assert response.status_code == 200
    await bot.settle()
    return response_url


async def last_answer(bot: BotUnderTest, response_url: str) -> str:
    return response_text((await bot.slack.wait_for_response(response_url))[-1])


async def test_administrator_is_granted_after_the_second_approval_only(
    two_for_admin: BotUnderTest,
) -> None:
    bot = two_for_admin
    request_id = await file_request(bot, role="administrator")
    assert "Needs 2 approvals (Administrator)" in card_text(bot)

    first = await approve_with_note(bot, request_id, APPROVER, "Leads the platform team.")
    assert bot.connect.count(**PUT) == 0, "one approval of two changes nothing in Connect"
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING
    assert "1 of 2 approvals" in await last_answer(bot, first)
    card = card_text(bot)
    assert f"1 of 2 approvals (Administrator): <@{APPROVER}>" in card
    assert "Leads the platform team." in card

    # Clicking again counts once.
    again = await approve_with_note(bot, request_id, APPROVER, "Really.")
    assert "counts already" in await last_answer(bot, again)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING and len(request.approvals) == 1
    assert bot.connect.count(**PUT) == 0

    await approve_with_note(bot, request_id, APPROVER_3, "Agreed with the CTO.")
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert request.role_granted == "administrator"
    assert bot.connect.count(**PUT) == 1 and bot.connect.count(*SET_ROLE) == 1
    assert bot.connect.get_local_user("julie2")["user_role"] == "administrator"
    card = card_text(bot)
    assert f"Approved by <@{APPROVER}> and <@{APPROVER_3}>" in card
    assert "Leads the platform team." in card and "Agreed with the CTO." in card
    told = json.dumps(dms_to(bot, REQUESTER)[-1]["blocks"])
    assert f"<@{APPROVER}> and <@{APPROVER_3}>" in told
    assert "Leads the platform team." in told and "Agreed with the CTO." in told


async def test_any_deny_ends_a_request_with_approvals(two_for_admin: BotUnderTest) -> None:
    bot = two_for_admin
    request_id = await file_request(bot, role="publisher")
    await approve(bot, request_id, APPROVER)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING
    await bot.click(ids.ACTION_DENY, request_id, user_id=APPROVER_2)
    await bot.settle()
    views = [c.args["view"] for c in bot.slack.calls_to("views.open")]
    deny_view = next(v for v in reversed(views) if v.get("callback_id") == ids.VIEW_DENY_REASON)
    await bot.submit(
        ids.VIEW_DENY_REASON,
        {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: {"value": "Not this quarter."}}},
        deny_view["private_metadata"],
        user_id=APPROVER_2,
    )
    await bot.settle()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.DENIED
    assert bot.connect.count(**PUT) == 0
    # The approval given before cannot revive it.
    late = await approve(bot, request_id, APPROVER_3)
    assert "already decided" in await last_answer(bot, late)
    assert bot.connect.count(**PUT) == 0
    assert f"Approved before the denial by <@{APPROVER}>" in card_text(bot)


async def test_a_raise_starts_the_count_again_under_that_roles_approvers(
    two_for_admin: BotUnderTest,
) -> None:
    bot = two_for_admin
    request_id = await file_request(bot, role="publisher")
    await approve(bot, request_id, APPROVER)
    assert f"1 of 2 approvals (Publisher): <@{APPROVER}>" in card_text(bot)
    # APPROVER_2 would grant Administrator: a new question, and the count starts again.
    await approve(bot, request_id, APPROVER_2, role="administrator")
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING and request.role_asked == "administrator"
    card = card_text(bot)
    assert "Needs 2 approvals (Administrator)" in card
    assert (
        f"Publisher: 1 of 2 approvals (<@{APPROVER}>); they count towards granting Publisher, "
        "not Administrator."
    ) in card
    # Administrator's approvers now: APPROVER_2 is not one of them.
    refused = await approve(bot, request_id, APPROVER_2)
    assert "Administrator" in await last_answer(bot, refused)
    await approve(bot, request_id, APPROVER)
    assert bot.connect.count(**PUT) == 0
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING
    await approve(bot, request_id, APPROVER_3)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.role_granted == "administrator"
    assert bot.connect.count(**PUT) == 1 and bot.connect.count(*SET_ROLE) == 1


async def test_a_lower_role_needs_only_its_own_count(two_for_admin: BotUnderTest) -> None:
    """Granting Viewer (one approval) on a request for Publisher (two) decides it at once."""
    bot = two_for_admin
    request_id = await file_request(bot, role="publisher")
    await approve(bot, request_id, APPROVER, role="viewer")
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.role_granted == "viewer"
    assert bot.connect.get_local_user("julie2")["user_role"] == "viewer"


async def test_a_note_on_a_request_that_sets_no_role(bot: BotUnderTest) -> None:
    bot.connect.key_role = "publisher"  # no role is set: Approve decides with one click
    request_id = await file_request(bot)
    card = bot.slack.calls_to("chat.postMessage")[-1].args
    actions = [
        e["action_id"] for b in card["blocks"] if b.get("type") == "actions" for e in b["elements"]
    ]
    assert actions == [ids.ACTION_APPROVE, ids.ACTION_APPROVE_WITH_NOTE, ids.ACTION_DENY]
    opened = bot.slack.count("views.open")
    response, _ = await bot.click(ids.ACTION_APPROVE_WITH_NOTE, request_id, user_id=APPROVER)
    assert response.status_code == 200
    await bot.settle()
    assert bot.connect.count(**PUT) == 0, "the note's button approves only when submitted"
    view = bot.slack.calls_to("views.open")[opened:][-1].args["view"]
    assert_valid_view(view)
    assert view["callback_id"] == ids.VIEW_APPROVE
    assert not any(b.get("block_id") == ids.ROLE_BLOCK for b in view["blocks"])
    note = "Welcome aboard <!channel> *bold*"
    response = await bot.submit(
        ids.VIEW_APPROVE,
        {ids.APPROVAL_NOTE_BLOCK: {ids.APPROVAL_NOTE_INPUT: {"value": note}}},
        view["private_metadata"],
        user_id=APPROVER,
    )
    assert response.status_code == 200
    await bot.settle()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and bot.connect.count(**PUT) == 1
    assert request.approvals[0].note == note
    for blocks in (latest_card(bot)["blocks"], dms_to(bot, REQUESTER)[-1]["blocks"]):
        notes = [
            e
            for b in blocks
            if b.get("type") == "context"
            for e in b["elements"]
            if e.get("text") == note
        ]
        # Shown as the approver wrote it, as plain text: never a mention or formatting.
        assert notes and all(e["type"] == "plain_text" for e in notes)


async def test_approvals_required_is_checked_at_start(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> None:
    for wrong, said in (
        ("administrator:two", "not a whole number"),
        ("owner:2", "unknown role"),
        ("administrator:0", "between 1 and"),
        ("administrator", "has no count"),
    ):
        with pytest.raises(ValueError, match=said):
            make_settings(fake_slack, fake_connect, database_url, approvals_required=wrong)


async def test_check_says_when_a_group_is_too_small_for_the_count(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> None:
    fake_slack.add_usergroup(ADMINS_GROUP, [APPROVER])
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        requestable_roles="viewer,publisher,administrator",
        approvals_required="administrator:2",
        slack_admin_approver_usergroup=ADMINS_GROUP,
    )
    out = io.StringIO()
    assert await run_checks(settings, out) == 1
    assert (
        f"SLACK_ADMIN_APPROVER_USERGROUP {ADMINS_GROUP} has 1 member(s) who may decide, but "
        "APPROVALS_REQUIRED asks for 2 different approvers"
    ) in out.getvalue()
    fake_slack.add_usergroup(ADMINS_GROUP, [APPROVER, APPROVER_2])
    out = io.StringIO()
    await run_checks(settings, out)
    assert f"SLACK_ADMIN_APPROVER_USERGROUP {ADMINS_GROUP} has 2 member(s), who may decide" in (
        out.getvalue()
    )


async def test_a_lower_role_with_a_count_of_its_own_is_counted_for_that_role(
    two_for_admin: BotUnderTest,
) -> None:
    bot = two_for_admin
    request_id = await file_request(bot, role="administrator")
    answer = await approve_with_note(
        bot, request_id, APPROVER, "Publisher is enough", role="publisher"
    )
    assert "1 of 2 approvals for Publisher" in await last_answer(bot, answer)
    card = card_text(bot)
    assert (
        f"Publisher: 1 of 2 approvals (<@{APPROVER}>); they count towards granting Publisher, "
        "not Administrator."
    ) in card
    assert "Publisher is enough" in card
    assert bot.connect.count(**PUT) == 0
    await approve(bot, request_id, APPROVER_3, role="publisher")
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.role_granted == "publisher"
    assert bot.connect.count(**PUT) == 1 and bot.connect.count(*SET_ROLE) == 1


async def test_approvals_of_an_attempt_connect_refused_do_not_count_again(
    two_for_admin: BotUnderTest,
) -> None:
    """Connect refuses the account (no free seat): the request is pending again, and its earlier
    approvals are on record but count no more — one of those approvers alone cannot make the
    bot call Connect again."""
    bot = two_for_admin
    bot.connect.license_checked_on_create = True
    bot.connect.license["users"] = 2  # the key's owner and julie1 take both seats
    request_id = await file_request(bot, role="publisher")
    await approve(bot, request_id, APPROVER)
    await approve(bot, request_id, APPROVER_3)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING and bot.connect.count(**PUT) == 1
    assert "no free seats" in card_text(bot)
    assert "Needs 2 approvals (Publisher)" in card_text(bot)

    again = await approve(bot, request_id, APPROVER)
    assert "1 of 2 approvals for Publisher" in await last_answer(bot, again)
    assert bot.connect.count(**PUT) == 1, "one earlier approver alone changes nothing"
    bot.connect.license["users"] += 1
    await approve(bot, request_id, APPROVER_3)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and bot.connect.count(**PUT) == 2
    assert len(request.approvals) == 4, "every approval stays on record"


async def test_an_account_already_there_keeps_every_approver_and_note(
    two_for_admin: BotUnderTest,
) -> None:
    bot = two_for_admin
    request_id = await file_request(bot, role="publisher")
    bot.connect.add_local_user("julie2", "Julie", "Jolly", "julie2@example.com")
    await approve_with_note(bot, request_id, APPROVER, "First note.")
    await approve_with_note(bot, request_id, APPROVER_3, "Second note.")
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.ALREADY_EXISTS
    card = card_text(bot)
    assert f"Approved by <@{APPROVER}> and <@{APPROVER_3}>" in card
    assert "First note." in card and "Second note." in card


async def test_unlocking_an_administrator_needs_the_administrators_approvers(
    two_for_admin: BotUnderTest,
) -> None:
    """A lock or an unlock grants no role, but unlocking an administrator gives administrator
    access back: Administrator's approvers and count apply."""
    bot = two_for_admin
    bot.connect.add_local_user(
        "boss", "Big", "Boss", "boss@example.com", user_role="administrator", locked=True
    )
    posted = bot.slack.count("chat.postMessage")
    response, _ = await bot.command("unlock boss Back from leave", user_id=REQUESTER)
    assert response.status_code == 200
    await bot.settle()
    [card] = [
        c.args
        for c in bot.slack.calls_to("chat.postMessage")[posted:]
        if c.args["channel"] == APPROVER_CHANNEL
    ]
    request_id = next(
        e["value"]
        for b in card["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == ids.ACTION_APPROVE
    )
    refused = await approve(bot, request_id, APPROVER_2)  # not an administrator approver
    assert "Administrator" in await last_answer(bot, refused)
    await approve(bot, request_id, APPROVER)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING
    assert bot.connect.count("POST", "v1/users/*/lock") == 0, "one approval of two"
    await approve(bot, request_id, APPROVER_3)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert bot.connect.count("POST", "v1/users/*/lock") == 1
    assert bot.connect.get_local_user("boss")["locked"] is False
