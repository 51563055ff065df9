"""Connect groups in access requests, end to end through signed Slack requests (and
`block_suggestion` payloads) against the fake Connect where Connect manages membership itself
(its "google" mode: groups on, members not from the provider): the new-account and role-change
forms offer existing Connect groups, the card shows them, and after the account exists the bot
adds it to each group, one recorded step per group (code 16, a member already, counts as done).
Where membership comes from the provider (LDAP), or the key is not an administrator's, the forms
offer no groups and say why."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.settings import Settings
from bot.slack.ui import ids
from bot.slack.ui.values import encode_role_change_metadata
from bot.workflow.models import StepAction, StepStatus
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_options, assert_valid_view
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
from tests.support.flows import (
    answer_to,
    approve,
    card_request_id,
    command,
    dms_to,
    latest_card,
    open_request_form,
    preselected_role,
    role_state,
)
from tests.support.slack_requests import block_suggestion_body

MEMBERS = "/__api__/v1/groups/{guid}/members"


@pytest.fixture
async def bot(
    settings: Settings, fake_slack: FakeSlack, fake_connect: FakeConnect
) -> AsyncIterator[BotUnderTest]:
    fake_connect.provider = "google"  # Connect manages membership itself
    running = await start_bot(settings, fake_slack, fake_connect)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await running.stop()


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


def block(view: dict, block_id: str) -> dict | None:
    return next((b for b in view["blocks"] if b.get("block_id") == block_id), None)


async def suggest(bot: BotUnderTest, typed: str, *, user_id: str = REQUESTER) -> list[dict]:
    body = block_suggestion_body(
        action_id=ids.GROUPS_INPUT,
        block_id=ids.GROUPS_BLOCK,
        value=typed,
        user_id=user_id,
        callback_id=ids.VIEW_JUSTIFICATION,
    )
    response = await bot.post(body)
    assert response.status_code == 200
    options: list[dict] = response.json()["options"]
    assert_valid_options(options)
    return options


def groups_state(guids: list[str]) -> dict[str, Any]:
    return {
        "type": "multi_external_select",
        "selected_options": [
            {"text": {"type": "plain_text", "text": guid}, "value": guid} for guid in guids
        ],
    }


async def submit_with_groups(
    bot: BotUnderTest, view: dict, guids: list[str], *, justification: str = "Team analyst."
) -> None:
    values: dict[str, dict[str, Any]] = {
        ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: justification},
        ids.GROUPS_BLOCK: {ids.GROUPS_INPUT: groups_state(guids)},
    }
    role = preselected_role(view)
    if role:
        values[ids.ROLE_BLOCK] = {ids.ROLE_INPUT: role_state(role)}
    response = await bot.submit(
        ids.VIEW_JUSTIFICATION, values, view["private_metadata"], user_id=REQUESTER
    )
    assert response.status_code == 200
    await bot.settle()


async def test_the_new_account_form_offers_connect_groups_and_adds_the_account(
    bot: BotUnderTest,
) -> None:
    analysts = bot.connect.add_group("analysts", owner_guid=bot.connect.owner_guid)
    bot.connect.add_group("finance")
    view, _ = await open_request_form(bot, "julie2")
    select = block(view, ids.GROUPS_BLOCK)
    assert select is not None and select["element"]["type"] == "multi_external_select"
    assert select["element"]["action_id"] == ids.GROUPS_INPUT

    # The options come from GET /v1/groups?prefix=, answered within Slack's 3 seconds.
    bot.connect.reset_calls()
    options = await suggest(bot, "ana")
    assert [(o["text"]["text"], o["value"]) for o in options] == [("analysts", analysts)]
    assert bot.connect.count("GET", "/__api__/v1/groups") == 1

    await submit_with_groups(bot, view, [analysts])
    card = bot.slack.calls_to("chat.postMessage")[-1]
    assert card.args["channel"] == APPROVER_CHANNEL
    assert "Groups: analysts" in response_text(card.args)
    request_id = card_request_id(card.args)
    # The group chosen was read from Connect again at filing.
    assert bot.connect.count("GET", f"/__api__/v1/groups/{analysts}") == 1

    await approve(bot, request_id)
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert bot.connect.count("POST", MEMBERS.format(guid=analysts)) == 1
    group = bot.connect.get_group(analysts)
    assert group is not None and done.connect_guid in group["members"]
    [step] = done.membership_steps
    assert (step.status, step.target_name) == (StepStatus.DONE, "analysts")
    assert "Add the account to analysts: done" in response_text(latest_card(bot))


async def test_a_role_change_with_a_group_the_account_is_in_counts_code_16_as_done(
    bot: BotUnderTest,
) -> None:
    julie1 = bot.connect.get_local_user("julie1")["guid"]
    analysts = bot.connect.add_group("analysts", members=[julie1])
    metadata = encode_role_change_metadata(julie1, "julie1", None)
    values = {
        ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state("publisher")},
        ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "Publishes now."},
        ids.GROUPS_BLOCK: {ids.GROUPS_INPUT: groups_state([analysts])},
    }
    response = await bot.submit(ids.VIEW_ROLE_CHANGE, values, metadata, user_id=REQUESTER)
    assert response.status_code == 200
    await bot.settle()
    request_id = card_request_id(bot.slack.calls_to("chat.postMessage")[-1].args)
    await approve(bot, request_id, role="publisher")
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert [(s.action, s.status) for s in done.steps] == [
        (StepAction.SET_ROLE, StepStatus.DONE),
        (StepAction.ADD_TO_GROUP, StepStatus.DONE),
    ]
    assert done.membership_steps[0].note == "It was a member already."
    assert bot.connect.get_local_user("julie1")["user_role"] == "publisher"


async def test_a_group_id_from_the_client_is_checked_against_connect(bot: BotUnderTest) -> None:
    view, response_url = await open_request_form(bot, "julie2")
    await submit_with_groups(bot, view, ["0b6d1a5e-1111-4222-8333-444455556666"])
    assert "no longer in Posit Connect" in response_text(await answer_to(bot, response_url))
    assert bot.slack.calls_to("chat.postMessage") == []


async def test_a_refused_member_waits_incomplete_and_a_retry_adds_it(bot: BotUnderTest) -> None:
    analysts = bot.connect.add_group("analysts")
    view, _ = await open_request_form(bot, "julie2")
    await submit_with_groups(bot, view, [analysts])
    request_id = card_request_id(bot.slack.calls_to("chat.postMessage")[-1].args)
    bot.connect.refuse_next("POST v1/groups/*/members", 10)
    await approve(bot, request_id)
    stuck = await bot.runtime.store.get(request_id)
    assert stuck is not None and stuck.state is RequestState.INCOMPLETE
    assert stuck.step(StepAction.CREATE_ACCOUNT).status is StepStatus.DONE  # type: ignore[union-attr]
    assert "group analysts failed" in (stuck.last_error or "")
    assert "administrator's key" in response_text(latest_card(bot))

    response, _ = await bot.click(ids.ACTION_RETRY, request_id, user_id=APPROVER)
    assert response.status_code == 200
    await bot.settle()
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert bot.connect.count("PUT", "/__api__/v1/users") == 1  # the account was made once
    assert done.connect_guid in bot.connect.get_group(analysts)["members"]  # type: ignore[index]


async def test_an_unanswered_member_post_is_settled_by_sending_it_again(
    bot: BotUnderTest,
) -> None:
    analysts = bot.connect.add_group("analysts")
    view, _ = await open_request_form(bot, "julie2")
    await submit_with_groups(bot, view, [analysts])
    request_id = card_request_id(bot.slack.calls_to("chat.postMessage")[-1].args)
    bot.connect.write_mode("POST v1/groups/*/members", "commit_then_500")
    await approve(bot, request_id)
    bot.connect.write_mode("POST v1/groups/*/members", "normal")
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert bot.connect.count("POST", MEMBERS.format(guid=analysts)) >= 2  # 500 (done), then 16


async def test_where_the_provider_owns_membership_the_form_offers_no_groups(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "ldap"
    fake_connect.add_group("analysts")
    async with running(settings, fake_slack, fake_connect) as bot:
        view, _ = await open_request_form(bot, "julie2")
        assert block(view, ids.GROUPS_BLOCK) is None
        assert "membership comes from the login provider" in response_text(view)
        assert await suggest(bot, "ana") == []


async def test_without_an_administrator_key_the_form_offers_no_groups(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "google"
    fake_connect.key_role = "publisher"
    fake_connect.add_group("analysts")
    async with running(settings, fake_slack, fake_connect) as bot:
        view, _ = await open_request_form(bot, "julie2")
        assert_valid_view(view)
        assert block(view, ids.GROUPS_BLOCK) is None
        assert "administrator's API key" in response_text(view)
        assert await suggest(bot, "ana") == []


async def test_suggestions_are_only_for_people_who_may_search(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "google"
    fake_connect.add_group("analysts")
    settings = settings.model_copy(update={"slack_search_channel": "CSEARCHERS"})
    fake_slack.add_channel("CSEARCHERS", members=[APPROVER])
    async with running(settings, fake_slack, fake_connect) as bot:
        assert await suggest(bot, "ana", user_id=REQUESTER) == []
        assert len(await suggest(bot, "ana", user_id=APPROVER)) == 1


# -- Join groups, for people who already have an account ---------------------------------------


def join_buttons(message: dict) -> list[str]:
    return [
        element["value"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == ids.ACTION_JOIN_GROUPS
    ]


async def open_join_form(bot: BotUnderTest, guid: str) -> dict:
    opened, updated = bot.slack.count("views.open"), bot.slack.count("views.update")
    response, _ = await bot.click(
        ids.ACTION_JOIN_GROUPS, guid, user_id=REQUESTER, ephemeral=True, channel_id="CGENERAL"
    )
    assert response.status_code == 200
    loading = (await bot.slack.wait_for("views.open", count=opened + 1))[-1]
    assert_valid_view(loading.args["view"])
    update = (await bot.slack.wait_for("views.update", count=updated + 1))[-1]
    view: dict = update.args["view"]
    assert_valid_view(view)
    await bot.settle()
    return view


async def test_an_account_joins_groups_through_the_gate(bot: BotUnderTest) -> None:
    julie1 = bot.connect.get_local_user("julie1")["guid"]
    analysts = bot.connect.add_group("analysts")
    message = await command(bot, "search julie", REQUESTER)
    assert join_buttons(message) == [julie1]  # julie2 has no account yet

    view = await open_join_form(bot, julie1)
    assert view["callback_id"] == ids.VIEW_JOIN_GROUPS
    select = block(view, ids.GROUPS_BLOCK)
    assert select is not None and select["optional"] is False
    options = await suggest(bot, "an")
    assert [o["value"] for o in options] == [analysts]

    # Nothing chosen: the form says so, nothing is filed.
    values: dict[str, dict[str, Any]] = {
        ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "Joins the analysts."},
        ids.GROUPS_BLOCK: {ids.GROUPS_INPUT: groups_state([])},
    }
    response = await bot.submit(
        ids.VIEW_JOIN_GROUPS, values, view["private_metadata"], user_id=REQUESTER
    )
    assert response.json()["errors"] == {ids.GROUPS_BLOCK: "Please choose at least one group."}

    values[ids.GROUPS_BLOCK] = {ids.GROUPS_INPUT: groups_state([analysts])}
    response = await bot.submit(
        ids.VIEW_JOIN_GROUPS, values, view["private_metadata"], user_id=REQUESTER
    )
    assert response.status_code == 200
    await bot.settle()
    card = bot.slack.calls_to("chat.postMessage")[-1].args
    assert "Connect groups request" in response_text(card) and "Groups: analysts" in response_text(
        card
    )
    request_id = card_request_id(card)
    await approve(bot, request_id)
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert bot.connect.count("POST", MEMBERS.format(guid=analysts)) == 1
    assert julie1 in bot.connect.get_group(analysts)["members"]  # type: ignore[index]
    assert [(s.action, s.status) for s in done.steps] == [
        (StepAction.ADD_TO_GROUP, StepStatus.DONE)
    ]
    assert "added to its groups" in response_text(latest_card(bot))
    dm = [d for d in dms_to(bot, REQUESTER) if "join groups" in d["text"]]
    assert dm and "approved" in dm[-1]["text"]


async def test_no_join_groups_where_the_provider_owns_membership(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "ldap"
    async with running(settings, fake_slack, fake_connect) as bot:
        message = await command(bot, "search julie", REQUESTER)
        assert join_buttons(message) == []
        # A forged click is told why, in the form.
        julie1 = bot.connect.get_local_user("julie1")["guid"]
        view = await open_join_form(bot, julie1)
        assert "membership comes from the login provider" in response_text(view)


async def test_groups_left_when_connect_stops_answering_are_added_on_recovery(
    bot: BotUnderTest,
) -> None:
    analysts = bot.connect.add_group("analysts")
    view, _ = await open_request_form(bot, "julie2")
    await submit_with_groups(bot, view, [analysts])
    request_id = card_request_id(bot.slack.calls_to("chat.postMessage")[-1].args)
    bot.connect.fail_next("POST v1/groups/*/members", 503, times=1000)
    await approve(bot, request_id)
    stuck = await bot.runtime.store.get(request_id)
    assert stuck is not None and stuck.state is RequestState.PROVISIONING, "not guessed"
    assert stuck.step(StepAction.CREATE_ACCOUNT).status is StepStatus.DONE  # type: ignore[union-attr]
    assert "look again" in (stuck.last_error or "")
    bot.connect.reset_faults()
    await bot.runtime.provisioner.recover_expired_leases()
    await bot.settle()
    done = await bot.runtime.store.get(request_id)
    assert done is not None and done.state is RequestState.APPROVED
    assert bot.connect.count("PUT", "/__api__/v1/users") == 1
    assert done.connect_guid in bot.connect.get_group(analysts)["members"]  # type: ignore[index]
