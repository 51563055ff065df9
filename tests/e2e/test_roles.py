"""A role in every new-account request, through signed Slack requests: the form offers the roles
Connect lets the bot set (or says the account gets Connect's default role), Approve confirms the
role granted, a higher role is a new question, and a role the bot may not grant is refused."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from bot.settings import Settings
from bot.slack.ui import ids
from bot.workflow.states import RequestState
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
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
    approve,
    card_request_id,
    click_approve,
    dms_to,
    file_request,
    home_of,
    latest_card,
    open_home,
    open_request_form,
    preselected_role,
    role_state,
    submit_approval,
    submit_request,
)
from tests.support.slack_requests import home_block_actions_body

SET_ROLE = ("PUT", "/__api__/v1/users/*")


def role_block(view: dict) -> dict | None:
    return next((b for b in view["blocks"] if b.get("block_id") == ids.ROLE_BLOCK), None)


def option_labels(block: dict) -> list[tuple[str, str]]:
    return [(o["text"]["text"], o["value"]) for o in block["element"]["options"]]


@pytest.fixture
async def bot_all_roles(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> AsyncIterator[BotUnderTest]:
    settings: Settings = make_settings(
        fake_slack, fake_connect, database_url, requestable_roles="viewer,publisher,administrator"
    )
    running = await start_bot(settings, fake_slack, fake_connect)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await running.stop()


# -- the request form --------------------------------------------------------------------------


async def test_form_offers_the_requestable_roles_with_an_administrator_key(
    bot: BotUnderTest,
) -> None:
    assert bot.connect.key_role == "administrator" and bot.connect.provider == "ldap"
    view, _ = await open_request_form(bot, "julie2")
    block = role_block(view)
    assert block is not None and block["element"]["type"] == "static_select"
    assert option_labels(block) == [("Viewer", "viewer"), ("Publisher", "publisher")]
    assert preselected_role(view) == "viewer"
    assert "default role" not in json.dumps(view)


async def test_form_labels_every_configured_role(bot_all_roles: BotUnderTest) -> None:
    view, _ = await open_request_form(bot_all_roles, "julie2")
    labels = [label for label, _ in option_labels(role_block(view))]
    assert labels == ["Viewer", "Publisher", "Administrator"]


@pytest.mark.parametrize("setup", ["publisher_key", "provider_roles"])
async def test_form_says_connects_default_role_when_no_role_can_be_set(
    settings: Settings, fake_slack: FakeSlack, fake_connect: FakeConnect, setup: str
) -> None:
    if setup == "publisher_key":
        fake_connect.key_role = "publisher"
    else:
        fake_connect.provider = "provider_roles"  # the login provider manages roles
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        await _default_role_flow(bot)
    finally:
        await bot.stop()


async def _default_role_flow(bot: BotUnderTest) -> None:
    view, _ = await open_request_form(bot, "julie2")
    assert role_block(view) is None
    assert "Connect's default role" in json.dumps(view)

    await submit_request(bot, view, "Needs to read the dashboards.")
    card = latest_card(bot)
    assert "Role asked: Connect's default role" in response_text(card)
    (request,) = await bot.runtime.store.list_requests(limit=5)
    assert request.role_asked is None

    # Nothing to confirm: Approve decides with one click, and no role is set.
    view_after, _ = await click_approve(bot, request.id)
    assert view_after is None
    assert bot.connect.count(**PUT) == 1
    assert bot.connect.count(*SET_ROLE) == 0


async def test_the_role_chosen_is_filed_and_shown_to_requester_and_approvers(
    bot: BotUnderTest,
) -> None:
    view, click_url = await open_request_form(bot, "julie2")
    await submit_request(bot, view, "Publishes the quarterly report.", role="publisher")
    card = latest_card(bot)
    assert "Role asked: Publisher" in response_text(card)
    (request,) = await bot.runtime.store.list_requests(limit=5)
    assert request.role_asked == "publisher"
    confirmation = (await bot.slack.wait_for_response(click_url))[-1]
    assert "Role asked: Publisher" in response_text(confirmation)


@pytest.mark.parametrize("role", ["administrator", "root"])
async def test_form_refuses_a_role_that_is_not_offered(bot: BotUnderTest, role: str) -> None:
    view, _ = await open_request_form(bot, "julie2")
    response = await bot.submit(
        ids.VIEW_JUSTIFICATION,
        {
            ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "Wants everything."},
            ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state(role)},
        },
        view["private_metadata"],
        user_id=REQUESTER,
    )
    await bot.settle()
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert ids.ROLE_BLOCK in answer["errors"]
    assert await bot.runtime.store.list_requests(limit=5) == []


# -- approving with a role ---------------------------------------------------------------------


async def test_approve_opens_a_confirmation_with_the_role_asked(bot: BotUnderTest) -> None:
    request_id = await file_request(bot, role="publisher")
    view, _ = await click_approve(bot, request_id)
    assert view is not None and view["callback_id"] == ids.VIEW_APPROVE
    assert preselected_role(view) == "publisher"
    assert option_labels(role_block(view)) == [("Viewer", "viewer"), ("Publisher", "publisher")]
    assert bot.connect.count(**PUT) == 0, "nothing is approved before the confirmation"
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING


async def test_approve_with_a_lower_role(bot: BotUnderTest) -> None:
    bot.connect.default_user_role = "publisher"  # Connect gives more than the approver grants
    request_id = await file_request(bot, role="publisher")
    await approve(bot, request_id, role="viewer")

    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert (request.role_asked, request.role_granted) == ("publisher", "viewer")
    assert bot.connect.count(**PUT) == 1
    assert bot.connect.count(*SET_ROLE) == 1
    assert bot.connect.get_local_user("julie2")["user_role"] == "viewer"
    card = response_text(latest_card(bot))
    assert "Role asked: Publisher" in card and "Role granted: Viewer" in card
    assert "Viewer" in response_text(dms_to(bot, REQUESTER)[-1])


async def test_a_higher_role_is_a_new_question_then_approved_by_a_second_click(
    bot: BotUnderTest,
) -> None:
    request_id = await file_request(bot, role="viewer")
    view, click_url = await click_approve(bot, request_id)
    assert "new question" in json.dumps(view)
    await submit_approval(bot, view, role="publisher")

    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING
    assert (request.role_asked, request.raised_by, request.raised_from) == (
        "publisher",
        APPROVER,
        "viewer",
    )
    assert bot.connect.count(**PUT) == 0, "raising the role approves nothing"
    told = response_text((await bot.slack.wait_for_response(click_url))[-1])
    assert "now asks for Publisher" in told
    assert "Role asked: Publisher" in response_text(latest_card(bot))

    # The new question, approved by another approver's click (the role asked preselected).
    view_2, _ = await click_approve(bot, request_id, APPROVER_2)
    assert preselected_role(view_2) == "publisher"
    await submit_approval(bot, view_2, user_id=APPROVER_2)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.role_granted == "publisher"
    assert bot.connect.count(**PUT) == 1
    assert bot.connect.get_local_user("julie2")["user_role"] == "publisher"


@pytest.mark.parametrize("role", ["administrator", "root", None])
async def test_a_role_outside_requestable_roles_is_refused_in_the_confirmation(
    bot: BotUnderTest, role: str | None
) -> None:
    request_id = await file_request(bot, role="publisher")
    view, _ = await click_approve(bot, request_id)
    values = {ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state(role)}} if role else {}
    response = await bot.submit(
        ids.VIEW_APPROVE, values, view["private_metadata"], user_id=APPROVER
    )
    await bot.settle()
    answer = response.json()
    assert answer["response_action"] == "errors" and ids.ROLE_BLOCK in answer["errors"]
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING and request.role_asked == "publisher"
    assert bot.connect.count(**PUT) == 0


@pytest.mark.parametrize(
    ("who", "expected"), [(REQUESTER, "your own request"), (OUTSIDER, "approver channel")]
)
async def test_the_approver_is_checked_again_when_the_confirmation_is_submitted(
    bot: BotUnderTest, who: str, expected: str
) -> None:
    """A confirmation's submission is a decision of its own: whoever submits it (the form's
    metadata is the client's) passes the same click-time checks."""
    request_id = await file_request(bot, role="publisher")
    view, click_url = await click_approve(bot, request_id)
    await submit_approval(bot, view, user_id=who)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING
    assert bot.connect.count(**PUT) == 0
    told = (await bot.slack.wait_for_response(click_url))[-1]
    assert expected in response_text(told)


async def test_a_forged_confirmation_is_refused(bot: BotUnderTest) -> None:
    request_id = await file_request(bot, role="publisher")
    for metadata in ("", "{", json.dumps({"i": "../../etc"}), json.dumps({"x": request_id})):
        response = await bot.submit(
            ids.VIEW_APPROVE,
            {ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state("viewer")}},
            metadata,
            user_id=APPROVER,
        )
        assert response.json()["response_action"] == "errors"
    await bot.settle()
    assert bot.connect.count(**PUT) == 0


async def test_approve_on_the_home_tab_confirms_the_role_too(bot: BotUnderTest) -> None:
    request_id = await file_request(bot, role="publisher")
    await open_home(bot, APPROVER)
    assert request_id in json.dumps(home_of(bot, APPROVER))
    opened = bot.slack.count("views.open")
    body = home_block_actions_body(action_id=ids.ACTION_APPROVE, value=request_id, user_id=APPROVER)
    assert (await bot.post(body)).status_code == 200
    await bot.settle()
    view = bot.slack.calls_to("views.open")[opened:][-1].args["view"]
    assert view["callback_id"] == ids.VIEW_APPROVE
    await submit_approval(bot, view, role="viewer")
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.role_granted == "viewer"
    # The Home tab moved on and says what was decided.
    home = json.dumps(home_of(bot, APPROVER))
    assert "Your decision was recorded" in home and "Role granted: Viewer" in home


async def test_an_incomplete_request_is_retried_from_the_home_tab(bot: BotUnderTest) -> None:
    """The role step fails after the account was created: the approver's Home tab offers a
    Retry of that step alone, and the tab moves on once it is done."""
    request_id = await file_request(bot, role="publisher")
    bot.connect.fail_next("PUT v1/users/*", 403, code=23, times=5)
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.INCOMPLETE, request
    assert bot.connect.count(**PUT) == 1

    home = json.dumps(await open_home(bot, APPROVER_2))
    assert ids.ACTION_RETRY in home and "failed" in home
    bot.connect.reset_faults()
    body = home_block_actions_body(action_id=ids.ACTION_RETRY, value=request_id, user_id=APPROVER_2)
    assert (await bot.post(body)).status_code == 200
    await bot.settle()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED and request.role_granted == "publisher"
    assert bot.connect.count(**PUT) == 1, "the account is never created twice"
    assert bot.connect.get_local_user("julie2")["user_role"] == "publisher"
    home = json.dumps(home_of(bot, APPROVER_2))
    assert "Your decision was recorded" in home and ids.ACTION_RETRY not in home


# -- the whole path, as the "done when" says it ------------------------------------------


async def test_a_requester_asks_for_publisher_and_gets_a_publisher_account(
    bot: BotUnderTest,
) -> None:
    """Through signed requests: the form, the card, the confirmation; Connect ends up holding a
    publisher account, created once and given its role once, and everyone is told."""
    assert bot.connect.default_user_role == "viewer"
    view, _ = await open_request_form(bot, "julie2")
    await submit_request(bot, view, "Publishes the quarterly report.", role="publisher")
    card = latest_card(bot)
    request_id = card_request_id(card)
    assert "Role asked: Publisher" in response_text(card)
    await approve(bot, request_id)

    account = bot.connect.get_local_user("julie2")
    assert account is not None and account["user_role"] == "publisher"
    assert bot.connect.count(**PUT) == 1, "created once"
    assert bot.connect.count(*SET_ROLE) == 1, "role set once"
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert [(s.action.value, s.status.value) for s in request.steps] == [
        ("create_account", "done"),
        ("set_role", "done"),
    ]
    card_text = response_text(latest_card(bot))
    assert "Role granted: Publisher" in card_text and "with the role Publisher" in card_text
    assert "with the role Publisher" in response_text(dms_to(bot, REQUESTER)[-1])


async def test_a_failed_role_step_says_so_on_the_card_and_is_retried_there(
    bot: BotUnderTest,
) -> None:
    request_id = await file_request(bot, role="publisher")
    bot.connect.key_role = "publisher"  # demoted since filing: Connect refuses the role (23)
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.INCOMPLETE
    card = latest_card(bot)
    text = response_text(card)
    assert "setting its role failed" in text and "Set the role to Publisher: failed" in text
    assert "administrator" in text, "why: the key may not change roles"
    retry = [
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == ids.ACTION_RETRY
    ]
    assert [e["value"] for e in retry] == [request_id]

    # The requester may not retry their own request; an approver may, once the key is fixed.
    _, url = await bot.click(ids.ACTION_RETRY, request_id, user_id=REQUESTER)
    await bot.settle()
    assert "your own request" in response_text((await bot.slack.wait_for_response(url))[-1])
    bot.connect.key_role = "administrator"
    await bot.click(ids.ACTION_RETRY, request_id, user_id=APPROVER_2)
    await bot.settle()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert bot.connect.count(**PUT) == 1 and bot.connect.count(*SET_ROLE) == 2
    assert bot.connect.get_local_user("julie2")["user_role"] == "publisher"
    assert "Retry" not in json.dumps(latest_card(bot)["blocks"])


async def test_a_stale_confirmation_loses_to_a_raise(bot_all_roles: BotUnderTest) -> None:
    """A opens the confirmation (Viewer asked); B raises to Administrator; A submits Viewer:
    nothing is approved, and A is told the question changed."""
    bot = bot_all_roles
    request_id = await file_request(bot, role="viewer")
    stale, click_url = await click_approve(bot, request_id, APPROVER)
    raising, _ = await click_approve(bot, request_id, APPROVER_2)
    await submit_approval(bot, raising, role="administrator", user_id=APPROVER_2)
    await submit_approval(bot, stale, role="viewer", user_id=APPROVER)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING and request.role_asked == "administrator"
    assert bot.connect.count(**PUT) == 0
    told = response_text((await bot.slack.wait_for_response(click_url))[-1])
    assert "another role since you opened the confirmation" in told


async def test_an_incomplete_request_is_closed_as_it_stands_from_the_card(
    bot: BotUnderTest,
) -> None:
    request_id = await file_request(bot, role="publisher")
    bot.connect.key_role = "publisher"  # Connect refuses the role (23)
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.INCOMPLETE
    await bot.click(ids.ACTION_CLOSE, request_id, user_id=APPROVER_2)
    await bot.settle()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.CLOSED and request.closed_by == APPROVER_2
    card = response_text(latest_card(bot))
    assert "closed the request as it stood" in card and "role in Connect: Viewer" in card
    assert "closed it as it stood" in response_text(dms_to(bot, REQUESTER)[-1])
    assert bot.connect.get_local_user("julie2")["user_role"] == "viewer"


async def test_a_request_form_submitted_by_a_guest_is_not_filed(bot: BotUnderTest) -> None:
    """The form travels with the click; whoever submits it must still be allowed to search."""
    view, _ = await open_request_form(bot, "julie2")
    bot.slack.add_user("UGUEST0001", is_restricted=True)
    await submit_request(bot, view, "Needs it.", user_id="UGUEST0001")
    assert await bot.runtime.store.list_requests(limit=5) == []
    assert bot.connect.count(**PUT) == 0
