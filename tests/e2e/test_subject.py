"""Nobody approves their own access, through signed Slack requests: the person a request is for is
matched to their Slack account by email at filing, and refused when they try to decide it; when
no match can be made, the card says so."""

from __future__ import annotations

import json

from bot.slack.ui import ids
from bot.workflow.models import SubjectLink
from bot.workflow.states import RequestState
from tests.support.bot_under_test import APPROVER_2, REQUESTER, BotUnderTest, response_text
from tests.support.flows import PUT, approve, click_approve, dms_to, file_request, latest_card


async def test_an_approver_cannot_approve_a_request_for_their_own_access(
    bot: BotUnderTest,
) -> None:
    # APPROVER_2's Slack email is the directory's email of the person asked for.
    bot.slack.add_user(APPROVER_2, email="julie2@example.com")
    request_id = await file_request(bot, role="publisher")
    request = await bot.runtime.store.get(request_id)
    assert (request.subject_id, request.subject_link) == (APPROVER_2, SubjectLink.LINKED)
    assert f"<@{APPROVER_2}>, who may not decide it" in json.dumps(latest_card(bot))

    view, url = await click_approve(bot, request_id, APPROVER_2)
    assert view is None, "no confirmation for the person themselves"
    told = response_text((await bot.slack.wait_for_response(url))[-1])
    assert "your own Connect access" in told
    _, url = await bot.click(ids.ACTION_DENY, request_id, user_id=APPROVER_2)
    await bot.settle()
    assert "your own Connect access" in response_text((await bot.slack.wait_for_response(url))[-1])
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING
    assert bot.connect.count(**PUT) == 0


async def test_a_person_without_a_slack_match_is_flagged_on_the_card(bot: BotUnderTest) -> None:
    # Nobody in the workspace has julie2@example.com.
    request_id = await file_request(bot)
    request = await bot.runtime.store.get(request_id)
    assert request.subject_link is SubjectLink.NOT_FOUND and request.subject_id is None
    text = response_text(latest_card(bot))
    assert "Could not match this person to a Slack account" in text
    assert REQUESTER not in (request.subject_id or "")


async def test_the_person_matched_at_filing_is_welcomed_without_a_second_lookup(
    bot: BotUnderTest,
) -> None:
    bot.slack.add_user("UJULIE2", email="julie2@example.com")
    bot.connect.key_role = "publisher"  # one-click approval: no role step
    request_id = await file_request(bot)
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert len(dms_to(bot, "UJULIE2")) == 1, "the welcome"
    assert bot.slack.count("users.lookupByEmail") == 1, "only at filing"
