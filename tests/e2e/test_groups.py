"""Directory groups brought into Connect, end to end through signed Slack requests against the
fake Connect in its LDAP mode: `group search`, Request group (only the name comes back; the
ticket is read again at filing), the gate, and `PUT /v1/groups` exactly once with each of its
outcomes in words; elsewhere `group search` says groups come from the login provider."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from bot.settings import Settings
from bot.slack.ui import ids
from bot.slack.ui.values import decode_group_metadata
from bot.workflow.models import RequestKind
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message, assert_valid_view
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_CHANNEL,
    REQUESTER,
    BotUnderTest,
    response_text,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.flows import answer_to, approve, card_request_id, command, dms_to, latest_card

REMOTE_GROUPS = "/__api__/v1/groups/remote"
GROUPS = "/__api__/v1/groups"


@contextlib.asynccontextmanager
async def running(
    settings: Settings, fake_slack: FakeSlack, fake_connect: FakeConnect
) -> AsyncIterator[BotUnderTest]:
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        yield bot
    finally:
        with contextlib.suppress(Exception):
            await bot.stop()


def group_buttons(message: dict) -> list[str]:
    return [
        block["accessory"]["value"]
        for block in message["blocks"]
        if (block.get("accessory") or {}).get("action_id") == ids.ACTION_REQUEST_GROUP
    ]


async def open_group_form(bot: BotUnderTest, name: str) -> tuple[dict, str]:
    opened = bot.slack.count("views.open")
    response, response_url = await bot.click(
        ids.ACTION_REQUEST_GROUP, name, user_id=REQUESTER, ephemeral=True, channel_id="CGENERAL"
    )
    assert response.status_code == 200
    view = (await bot.slack.wait_for("views.open", count=opened + 1))[-1].args["view"]
    await bot.settle()
    assert_valid_view(view)
    return view, response_url


async def submit_group_form(bot: BotUnderTest, view: dict, justification: str) -> None:
    values = {ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: justification}}
    response = await bot.submit(
        ids.VIEW_GROUP_REQUEST, values, view["private_metadata"], user_id=REQUESTER
    )
    assert response.status_code == 200
    await bot.settle()


async def file_group(bot: BotUnderTest, name: str) -> str:
    """Search, press Request group, send the form; returns the card's request id."""
    message = await command(bot, f"group search {name}", REQUESTER)
    assert name in group_buttons(message)
    view, _ = await open_group_form(bot, name)
    await submit_group_form(bot, view, "The analysts share their dashboards with it.")
    card = bot.slack.calls_to("chat.postMessage")[-1]
    assert card.args["channel"] == APPROVER_CHANNEL
    assert_valid_message(card.args)
    return card_request_id(card.args)


async def test_group_search_marks_groups_in_connect_and_offers_the_others(
    bot: BotUnderTest,
) -> None:
    bot.connect.add_directory_group("analysts")
    bot.connect.add_directory_group("analytics")
    guid = bot.connect.bring_in_directory_group("analytics")
    message = await command(bot, "group search ana", REQUESTER)
    text = response_text(message)
    assert "In Connect" in text and guid in text
    assert group_buttons(message) == ["analysts"]  # the name only: no ticket travels
    assert not any(ticket in text for ticket in bot.connect.issued_tickets)
    assert bot.connect.count("GET", REMOTE_GROUPS) == 1


async def test_a_group_request_goes_through_the_gate_and_is_created_once(
    bot: BotUnderTest,
) -> None:
    bot.connect.add_directory_user("ann", "Ann", "Alyst")
    bot.connect.add_local_user("ann", "Ann", "Alyst")
    bot.connect.add_directory_group("analysts", members=["ann"])
    request_id = await file_group(bot, "analysts")
    card = latest_card(bot)
    assert "Connect group request" in response_text(card) and "analysts" in response_text(card)
    # The form carried the name; filing read the group (and a fresh ticket) again.
    searches = bot.connect.count("GET", REMOTE_GROUPS)
    assert searches >= 2
    request = await bot.runtime.store.get(request_id)
    assert request is not None and request.kind is RequestKind.NEW_GROUP
    assert request.group_name == "analysts" and request.username == ""

    # Only approvers decide: the requester cannot approve their own request.
    response, _ = await bot.click(ids.ACTION_APPROVE, request_id, user_id=REQUESTER)
    assert response.status_code == 200
    await bot.settle()
    assert bot.connect.count("PUT", GROUPS) == 0

    await approve(bot, request_id)
    await approve(bot, request_id)  # a second click changes nothing
    assert bot.connect.count("PUT", GROUPS) == 1
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    group = bot.connect.get_group(str(done.connect_guid))
    assert group is not None and group["name"] == "analysts"
    assert done.temp_ticket == ""
    text = response_text(latest_card(bot))
    assert "now in Posit Connect" in text and str(done.connect_guid) in text
    [dm] = [d for d in dms_to(bot, REQUESTER) if "group" in d["text"]]
    assert "approved" in dm["text"] and str(done.connect_guid) in response_text(dm)


async def test_two_directory_groups_of_one_name_are_refused_clearly(bot: BotUnderTest) -> None:
    bot.connect.add_directory_group("data", unit="emea")
    bot.connect.add_directory_group("data", unit="apac")
    message = await command(bot, "group search data", REQUESTER)
    assert group_buttons(message) == []
    assert "Several directory groups have this name" in response_text(message)
    # A click on a button from elsewhere (or forged) is refused when the request is filed.
    view, response_url = await open_group_form(bot, "data")
    name, carried = decode_group_metadata(view["private_metadata"])
    assert (name, carried) == ("data", response_url)
    await submit_group_form(bot, view, "Needed.")
    answer = response_text(await answer_to(bot, response_url))
    assert "Several directory groups are named data" in answer
    assert bot.slack.calls_to("chat.postMessage") == []


async def test_a_group_in_connect_by_approval_time_is_reported_already_there(
    bot: BotUnderTest,
) -> None:
    bot.connect.add_directory_group("analysts")
    request_id = await file_group(bot, "analysts")
    guid = bot.connect.bring_in_directory_group("analysts")  # someone else, meanwhile
    await approve(bot, request_id)
    assert bot.connect.count("PUT", GROUPS) == 1  # answered 131
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.ALREADY_EXISTS
    assert done.connect_guid == guid
    assert "was in Posit Connect already" in response_text(latest_card(bot))


async def test_a_stale_ticket_is_searched_again_and_retried_once(bot: BotUnderTest) -> None:
    bot.connect.add_directory_group("analysts")
    request_id = await file_group(bot, "analysts")
    bot.connect.invalidate_tickets()
    await approve(bot, request_id)
    assert bot.connect.count("PUT", GROUPS) == 2
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED


async def test_a_provider_that_cannot_is_said_in_words(bot: BotUnderTest) -> None:
    bot.connect.add_directory_group("analysts")
    request_id = await file_group(bot, "analysts")
    bot.connect.refuse_next("PUT v1/groups", 132)
    await approve(bot, request_id)
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.PENDING
    text = response_text(latest_card(bot))
    assert "login provider cannot do this" in text and "code 132" in text


async def test_an_unanswered_put_is_settled_by_looking_the_group_up(bot: BotUnderTest) -> None:
    bot.connect.add_directory_group("analysts")
    request_id = await file_group(bot, "analysts")
    bot.connect.write_mode("PUT v1/groups", "commit_then_500")
    await approve(bot, request_id)
    assert bot.connect.count("PUT", GROUPS) == 1
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert done.connect_guid and bot.connect.get_group(done.connect_guid) is not None
    assert "found the group afterwards" in (done.outcome_note or "")


async def test_elsewhere_group_search_says_groups_come_from_the_provider(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "google"
    async with running(settings, fake_slack, fake_connect) as bot:
        message = await command(bot, "group search ana", REQUESTER)
        assert "come from the login provider" in response_text(message)
        assert bot.connect.count("GET", REMOTE_GROUPS) == 0


async def test_group_search_needs_a_prefix(bot: BotUnderTest) -> None:
    message = await command(bot, "group search", REQUESTER)
    assert "search needs a prefix" in response_text(message)
    message = await command(bot, "group list", REQUESTER)
    assert "unknown subcommand" in response_text(message)
    assert APPROVER not in response_text(message)


async def test_a_second_request_for_the_group_points_to_the_first(bot: BotUnderTest) -> None:
    bot.connect.add_directory_group("analysts")
    await file_group(bot, "analysts")
    view, response_url = await open_group_form(bot, "analysts")
    await submit_group_form(bot, view, "Again.")
    answer = response_text(await answer_to(bot, response_url))
    assert "already asked for a directory group in Connect for this group" in answer
    assert len(bot.slack.calls_to("chat.postMessage")) == 1


async def claimed_by_a_dead_process(bot: BotUnderTest, request_id: str, *, put_sent: bool) -> None:
    now = datetime.now(UTC)
    changes: dict[str, object] = {
        "decided_by": APPROVER,
        "decided_at": now,
        "lease_owner": "dead:1",
        "lease_expires_at": now - timedelta(seconds=1),
    }
    if put_sent:
        changes["put_sent_at"] = now - timedelta(seconds=30)
    claimed = await bot.runtime.store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.PROVISIONING,
        now=now,
        changes=changes,
    )
    assert claimed is not None


async def test_a_dead_process_group_put_is_settled_by_another(bot: BotUnderTest) -> None:
    bot.connect.add_directory_group("analysts")
    request_id = await file_group(bot, "analysts")
    # A process claimed the request and died right after its PUT went through.
    await claimed_by_a_dead_process(bot, request_id, put_sent=True)
    guid = bot.connect.bring_in_directory_group("analysts")
    settled = await bot.runtime.provisioner.recover_expired_leases()
    await bot.settle()
    assert [r.id for r in settled] == [request_id]
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert done.connect_guid == guid
    assert bot.connect.count("PUT", GROUPS) == 0  # looked up, never sent again


async def test_a_dead_process_before_its_put_sends_the_request_back(bot: BotUnderTest) -> None:
    bot.connect.add_directory_group("analysts")
    request_id = await file_group(bot, "analysts")
    await claimed_by_a_dead_process(bot, request_id, put_sent=False)
    await bot.runtime.provisioner.recover_expired_leases()
    await bot.settle()
    back = await bot.runtime.store.get(request_id)
    assert back is not None and back.state is RequestState.PENDING
    assert "before it asked Connect to bring the group in" in (back.last_error or "")
    await approve(bot, request_id)
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert bot.connect.count("PUT", GROUPS) == 1


async def test_a_connect_group_of_the_same_name_is_never_taken_for_this_one(
    bot: BotUnderTest,
) -> None:
    """Connect has an unrelated group named "analysts": filing says so. If it appears after
    filing, Connect's "name in use" (15) or an unanswered PUT is settled by what the directory
    says about this directory group, never by the name alone."""
    bot.connect.add_directory_group("analysts")
    bot.connect.add_group("analysts")  # another group, not the directory's
    message = await command(bot, "group search analysts", REQUESTER)
    view, response_url = await open_group_form(bot, "analysts")
    await submit_group_form(bot, view, "The analysts share their dashboards with it.")
    told = response_text(await answer_to(bot, response_url))
    assert "has a group named analysts already, which is not this directory group" in told
    assert message and bot.connect.count("PUT", GROUPS) == 0

    bot.connect.add_directory_group("planners")
    request_id = await file_group(bot, "planners")
    other = bot.connect.add_group("planners")  # appears between filing and approval
    bot.connect.write_mode("PUT v1/groups", "fail_500")  # nothing done, no answer
    await approve(bot, request_id)
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is not RequestState.APPROVED
    assert done.connect_guid != other
