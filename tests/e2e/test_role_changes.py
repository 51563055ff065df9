"""Role changes for people who already have an account, end to end through signed Slack
requests: search results show roles and locks, Change role opens the form (read from the fake
Connect), the form's submission, and `/connect-user search` on a server without directory
search (SAML)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.settings import Settings
from bot.slack.ui import ids
from bot.slack.ui.search import FIRST_LOGIN_NOTE
from bot.slack.ui.values import decode_role_change_metadata, encode_role_change_metadata
from bot.workflow.models import RequestKind
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message, assert_valid_view
from tests.support.bot_under_test import (
    APPROVER_CHANNEL,
    REQUESTER,
    BotUnderTest,
    response_text,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.flows import answer_to, approve, card_request_id, command, dms_to

USERS = "/__api__/v1/users"
REMOTE = "/__api__/v1/users/remote"


def accessories(message: dict, action_id: str) -> list[dict]:
    return [
        block["accessory"]
        for block in message["blocks"]
        if (block.get("accessory") or {}).get("action_id") == action_id
    ]


def row_of(message: dict, username: str) -> str:
    """The text of the search result row naming `username`."""
    for block in message["blocks"]:
        text = (block.get("text") or {}).get("text", "")
        if block["type"] == "section" and f"\n{username} ·" in text:
            return str(text)
    raise AssertionError(f"no row for {username}: {response_text(message)}")


async def click_change_role(bot: BotUnderTest, guid: str) -> tuple[dict, str]:
    """Press Change role on the ephemeral results; returns (the view the loading modal became,
    the click's response_url)."""
    opened, updated = bot.slack.count("views.open"), bot.slack.count("views.update")
    response, response_url = await bot.click(
        ids.ACTION_CHANGE_ROLE, guid, user_id=REQUESTER, ephemeral=True, channel_id="CGENERAL"
    )
    assert response.status_code == 200
    loading = (await bot.slack.wait_for("views.open", count=opened + 1))[-1]
    assert_valid_view(loading.args["view"])
    update = (await bot.slack.wait_for("views.update", count=updated + 1))[-1]
    assert update.ok, update.error
    assert update.args["view_id"] == loading.response["view"]["id"]
    view = update.args["view"]
    assert_valid_view(view)
    await bot.settle()
    return view, response_url


def options(view: dict) -> list[tuple[str, str]]:
    [block] = [b for b in view["blocks"] if b.get("block_id") == ids.ROLE_BLOCK]
    return [(o["text"]["text"], o["value"]) for o in block["element"]["options"]]


async def submit_role_change(
    bot: BotUnderTest, metadata: str, *, role: str | None, justification: str
) -> dict[str, Any] | None:
    values: dict[str, dict[str, Any]] = {
        ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: justification},
        ids.ROLE_BLOCK: {
            ids.ROLE_INPUT: {
                "type": "static_select",
                "selected_option": None if role is None else {"value": role},
            }
        },
    }
    response = await bot.submit(ids.VIEW_ROLE_CHANGE, values, metadata, user_id=REQUESTER)
    assert response.status_code == 200
    await bot.settle()
    return response.json() if response.content else None


# -- roles and locks in search results --------------------------------------------------------


async def test_results_show_roles_locks_and_change_role(bot: BotUnderTest) -> None:
    julie3 = bot.connect.add_local_user(
        "julie3", "Julie", "Three", user_role="publisher", locked=True
    )
    julie1 = bot.connect.get_local_user("julie1")["guid"]
    message = await command(bot, "search julie", REQUESTER)
    assert row_of(message, "julie1").endswith("Role: Viewer")
    assert row_of(message, "julie3").endswith("Role: Publisher · locked")
    assert "Role:" not in row_of(message, "julie2")
    # A locked account is offered an unlock (it cannot log in), not a role change.
    changes = accessories(message, ids.ACTION_CHANGE_ROLE)
    assert [b["value"] for b in changes] == [julie1]
    assert [b["value"] for b in accessories(message, ids.ACTION_REQUEST_UNLOCK)] == [julie3]
    [request] = accessories(message, ids.ACTION_REQUEST_ACCOUNT)
    assert "julie2" in request["value"]


async def test_no_change_role_where_the_provider_owns_roles(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "provider_roles"
    async with running(settings, fake_slack, fake_connect) as bot:
        message = await command(bot, "search julie", REQUESTER)
        assert row_of(message, "julie1").endswith("Role: Viewer")
        assert not accessories(message, ids.ACTION_CHANGE_ROLE)
        assert accessories(message, ids.ACTION_REQUEST_ACCOUNT)


# -- the Change role button and its form --------------------------------------------------------


async def test_change_role_opens_the_form_read_from_connect(bot: BotUnderTest) -> None:
    guid = bot.connect.get_local_user("julie1")["guid"]
    await command(bot, "search julie", REQUESTER)
    bot.connect.reset_calls()
    view, response_url = await click_change_role(bot, guid)
    assert view["callback_id"] == ids.VIEW_ROLE_CHANGE
    assert "Julie Goolly" in response_text(view) and "Role: Viewer" in response_text(view)
    # REQUESTABLE_ROLES is viewer,publisher by default; julie1 is a viewer already.
    assert options(view) == [("Publisher", "publisher")]
    assert bot.connect.count("GET", f"{USERS}/{guid}") == 1
    target, carried_url = decode_role_change_metadata(view["private_metadata"])
    assert target is not None and (target.guid, target.username) == (guid, "julie1")
    assert carried_url == response_url


async def test_the_form_offers_what_requestable_roles_allow(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    guid = fake_connect.add_local_user("julie3", "Julie", "Three", user_role="publisher")
    settings = settings.model_copy(update={"requestable_roles": ("viewer", "administrator")})
    async with running(settings, fake_slack, fake_connect) as bot:
        view, _ = await click_change_role(bot, guid)
        assert options(view) == [("Viewer", "viewer"), ("Administrator", "administrator")]


async def test_a_gone_account_replaces_the_form_with_words(bot: BotUnderTest) -> None:
    view, _ = await click_change_role(bot, "0b5e0a4e-8c1b-4c9e-9d4e-3f2a1b0c9d8e")
    assert "submit" not in view
    assert "no longer exists" in response_text(view)


async def test_connect_down_replaces_the_form_with_words(bot: BotUnderTest) -> None:
    guid = bot.connect.get_local_user("julie1")["guid"]
    bot.connect.outage = "http_503"
    view, _ = await click_change_role(bot, guid)
    assert "submit" not in view
    assert "could not read this account" in response_text(view)


async def test_a_button_the_bot_did_not_make_opens_nothing(bot: BotUnderTest) -> None:
    response, response_url = await bot.click(
        ids.ACTION_CHANGE_ROLE,
        "../v1/user?<!channel>",
        user_id=REQUESTER,
        ephemeral=True,
        channel_id="CGENERAL",
    )
    assert response.status_code == 200
    await bot.settle()
    answer = await answer_to(bot, response_url)
    assert_valid_message(answer)
    assert bot.slack.count("views.open") == 0
    assert bot.connect.count(path=f"{USERS}/*") == 0


@pytest.mark.parametrize(
    ("method", "error"), [("views.open", "expired_trigger_id"), ("views.update", "view_too_large")]
)
async def test_a_form_slack_would_not_show_is_explained(
    bot: BotUnderTest, method: str, error: str
) -> None:
    guid = bot.connect.get_local_user("julie1")["guid"]  # type: ignore[index]
    bot.slack.fail(method, error=error)
    _, response_url = await bot.click(
        ids.ACTION_CHANGE_ROLE, guid, user_id=REQUESTER, ephemeral=True, channel_id="CGENERAL"
    )
    await bot.slack.wait_for(method)
    await bot.settle()
    told = await answer_to(bot, response_url)
    assert "press the button again" in response_text(told)


async def test_a_form_closed_before_it_was_filled_is_left_alone(bot: BotUnderTest) -> None:
    """views.update answers not_found when the person closed the modal: nobody to tell."""
    guid = bot.connect.get_local_user("julie1")["guid"]  # type: ignore[index]
    bot.slack.fail("views.update", error="not_found")
    _, response_url = await bot.click(
        ids.ACTION_CHANGE_ROLE, guid, user_id=REQUESTER, ephemeral=True, channel_id="CGENERAL"
    )
    await bot.slack.wait_for("views.update")
    await bot.settle()
    assert bot.slack.response_posts(response_url) == []
    assert not [
        c for c in bot.slack.calls_to("chat.postMessage") if c.args["channel"] != APPROVER_CHANNEL
    ]


# -- the form's submission ------------------------------------------------------------------------


def role_change_cards(bot: BotUnderTest) -> list[dict]:
    return [
        call.args
        for call in bot.slack.calls_to("chat.postMessage")
        if call.args["channel"] == APPROVER_CHANNEL
    ]


async def request_role_change(
    bot: BotUnderTest, username: str, role: str, justification: str = "Publishes reports now."
) -> tuple[str, str]:
    """Search, press Change role, choose `role` and send; returns (the account's GUID, the
    click's response_url)."""
    guid = bot.connect.get_local_user(username)["guid"]  # type: ignore[index]
    message = await command(bot, f"search {username}", REQUESTER)
    assert guid in [b["value"] for b in accessories(message, ids.ACTION_CHANGE_ROLE)]
    view, response_url = await click_change_role(bot, guid)
    answer = await submit_role_change(
        bot, view["private_metadata"], role=role, justification=justification
    )
    assert answer is None, f"the form closes: {answer}"
    return guid, response_url


async def test_a_role_change_is_filed_approved_and_carried_out_once(bot: BotUnderTest) -> None:
    guid, response_url = await request_role_change(bot, "julie1", "publisher")
    [card] = role_change_cards(bot)
    assert_valid_message(card)
    card_text = response_text(card)
    assert "julie1" in card_text and "Publisher" in card_text
    assert "Publishes reports now." in card_text
    confirmation = await answer_to(bot, response_url)
    assert "sent to the approvers" in response_text(confirmation)
    request_id = card_request_id(card)
    request = await bot.runtime.store.get(request_id)
    assert request is not None and request.kind is RequestKind.ROLE_CHANGE
    assert (request.connect_guid, request.role_asked, request.role_before) == (
        guid,
        "publisher",
        "viewer",
    )
    bot.connect.reset_calls()
    await approve(bot, request_id)
    assert bot.connect.get_local_user("julie1")["user_role"] == "publisher"  # type: ignore[index]
    assert bot.connect.count("PUT", f"{USERS}/{guid}") == 1
    assert bot.connect.count("PUT", USERS) == 0, "no account is created"
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED  # type: ignore[union-attr]
    assert dms_to(bot, REQUESTER), "the requester is told"


async def test_the_requester_cannot_approve_their_own_role_change(bot: BotUnderTest) -> None:
    await request_role_change(bot, "julie1", "publisher")
    request_id = card_request_id(role_change_cards(bot)[-1])
    await approve(bot, request_id, user_id=REQUESTER)
    assert bot.connect.get_local_user("julie1")["user_role"] == "viewer"  # type: ignore[index]
    assert bot.connect.count("PUT", f"{USERS}/*") == 0


async def test_a_second_role_change_points_to_the_first(bot: BotUnderTest) -> None:
    guid, _ = await request_role_change(bot, "julie1", "publisher")
    cards = len(role_change_cards(bot))
    response_url = bot.slack.new_response_url()
    metadata = encode_role_change_metadata(guid, "julie1", response_url)
    answer = await submit_role_change(bot, metadata, role="publisher", justification="Me too.")
    assert answer is None
    told = await answer_to(bot, response_url)
    assert_valid_message(told)
    assert "already a request for julie1" in told["text"]
    assert len(role_change_cards(bot)) == cards, "no second card"
    assert await bot.runtime.store.count_requests() == 1


async def test_what_the_workflow_refuses_is_told_in_words(bot: BotUnderTest) -> None:
    # A form crafted to ask for the role the account has: refused on the server, in words.
    guid = bot.connect.get_local_user("julie1")["guid"]  # type: ignore[index]
    response_url = bot.slack.new_response_url()
    metadata = encode_role_change_metadata(guid, "julie1", response_url)
    answer = await submit_role_change(bot, metadata, role="viewer", justification="Same again.")
    assert answer is None
    told = await answer_to(bot, response_url)
    assert_valid_message(told)
    assert "julie1 already has that role" in response_text(told)
    assert not role_change_cards(bot)


@pytest.mark.parametrize(
    ("role", "justification", "block"),
    [
        ("administrator", "Runs the server.", ids.ROLE_BLOCK),  # not in REQUESTABLE_ROLES
        ("root", "Wants everything.", ids.ROLE_BLOCK),
        (None, "No role chosen.", ids.ROLE_BLOCK),
        ("publisher", "   ", ids.JUSTIFICATION_BLOCK),
    ],
)
async def test_a_role_or_justification_that_cannot_be_filed_is_answered_in_the_form(
    bot: BotUnderTest, role: str | None, justification: str, block: str
) -> None:
    guid = bot.connect.get_local_user("julie1")["guid"]  # type: ignore[index]
    metadata = encode_role_change_metadata(guid, "julie1", bot.slack.new_response_url())
    answer = await submit_role_change(bot, metadata, role=role, justification=justification)
    assert answer is not None and answer["response_action"] == "errors"
    assert set(answer["errors"]) == {block}
    assert not role_change_cards(bot)
    assert await bot.runtime.store.count_requests() == 0


@pytest.mark.parametrize("metadata", ["", "{}", json.dumps({"g": "../v1/user"})])
async def test_a_form_the_bot_did_not_make_is_answered_in_the_form(
    bot: BotUnderTest, metadata: str
) -> None:
    answer = await submit_role_change(bot, metadata, role="publisher", justification="Because.")
    assert answer is not None and answer["response_action"] == "errors"
    assert "out of date" in answer["errors"][ids.ROLE_BLOCK]
    assert await bot.runtime.store.count_requests() == 0


# -- a server without directory search ----------------------------------------------------------


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


async def test_saml_search_finds_accounts_and_says_where_new_ones_come_from(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "saml"
    julie3 = fake_connect.add_local_user("julie3", "Julie", "Three", locked=True)
    async with running(settings, fake_slack, fake_connect) as bot:
        message = await command(bot, "search julie", REQUESTER)
        assert fake_connect.count(path=REMOTE) == 0, "no remote search where there is none"
        [call] = fake_connect.calls_for("GET", USERS)
        assert call.query["prefix"] == "julie"
        text = response_text(message)
        assert FIRST_LOGIN_NOTE in text
        assert "julie2" not in text, "people without an account are not listed"
        assert row_of(message, "julie3").endswith("Role: Viewer · locked")
        julie1 = fake_connect.get_local_user("julie1")["guid"]
        changes = accessories(message, ids.ACTION_CHANGE_ROLE)
        assert [b["value"] for b in changes] == [julie1]
        assert [b["value"] for b in accessories(message, ids.ACTION_REQUEST_UNLOCK)] == [julie3]
        assert not accessories(message, ids.ACTION_REQUEST_ACCOUNT)
        # The role change works there as anywhere.
        view, _ = await click_change_role(bot, julie1)
        assert options(view) == [("Publisher", "publisher")]


async def test_saml_search_without_matches_says_so(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "saml"
    async with running(settings, fake_slack, fake_connect) as bot:
        message = await command(bot, "search zed", REQUESTER)
        text = response_text(message)
        assert "No Posit Connect account matches" in text and FIRST_LOGIN_NOTE in text
        assert not accessories(message, ids.ACTION_CHANGE_ROLE)


async def test_saml_role_change_end_to_end(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "saml"
    async with running(settings, fake_slack, fake_connect) as bot:
        guid, _ = await request_role_change(bot, "julie1", "publisher")
        request_id = card_request_id(role_change_cards(bot)[-1])
        await approve(bot, request_id)
        assert fake_connect.get_local_user("julie1")["user_role"] == "publisher"  # type: ignore[index]
        assert fake_connect.count("PUT", f"{USERS}/{guid}") == 1
        assert fake_connect.count(path=REMOTE) == 0


# -- who may see an account and ask for its role --------------------------------------------------

GUEST = "UGUEST0001"


async def test_a_guest_who_clicks_change_role_sees_no_account(bot: BotUnderTest) -> None:
    """The button's GUID is in every search result, but anyone can send the click: a guest (who
    may not search) is told why, and nothing is read from Connect."""
    bot.slack.add_user(GUEST, is_restricted=True)
    guid = bot.connect.get_local_user("julie1")["guid"]  # type: ignore[index]
    bot.connect.reset_calls()
    opened, updated = bot.slack.count("views.open"), bot.slack.count("views.update")
    response, _ = await bot.click(
        ids.ACTION_CHANGE_ROLE, guid, user_id=GUEST, ephemeral=True, channel_id="CGENERAL"
    )
    assert response.status_code == 200
    await bot.slack.wait_for("views.open", count=opened + 1)
    update = (await bot.slack.wait_for("views.update", count=updated + 1))[-1]
    await bot.settle()
    text = response_text(update.args["view"])
    assert "guest" in text and "julie1" not in text and "Julie" not in text
    assert bot.connect.count("GET", f"{USERS}/{guid}") == 0


async def test_a_forged_role_change_from_a_guest_is_not_filed(bot: BotUnderTest) -> None:
    bot.slack.add_user(GUEST, is_restricted=True)
    guid = bot.connect.get_local_user("julie1")["guid"]  # type: ignore[index]
    url = bot.slack.new_response_url()
    metadata = encode_role_change_metadata(guid, "julie1", url)
    values = {
        ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "please"},
        ids.ROLE_BLOCK: {
            ids.ROLE_INPUT: {"type": "static_select", "selected_option": {"value": "publisher"}}
        },
    }
    response = await bot.submit(ids.VIEW_ROLE_CHANGE, values, metadata, user_id=GUEST)
    assert response.status_code == 200
    await bot.settle()
    assert role_change_cards(bot) == []
    assert await bot.runtime.store.list_requests(limit=5) == []
    assert "guest" in response_text((await bot.slack.wait_for_response(url))[-1])


async def test_an_account_search_needs_three_letters(
    fake_slack: FakeSlack, fake_connect: FakeConnect, settings: Settings
) -> None:
    fake_connect.provider = "saml"
    async with running(settings, fake_slack, fake_connect) as bot:
        message = await command(bot, "search ju", REQUESTER)
        assert "at least 3 letters" in response_text(message)
        assert fake_connect.count("GET", USERS) == 0, "Connect is not asked for everyone"


async def test_the_requester_and_the_person_are_told_of_the_new_role(bot: BotUnderTest) -> None:
    bot.slack.add_user("UJULIE1", email="julie1@example.com")  # julie1 is in the workspace
    await request_role_change(bot, "julie1", "publisher")
    request_id = card_request_id(role_change_cards(bot)[-1])
    await approve(bot, request_id)
    told = response_text(dms_to(bot, REQUESTER)[-1])
    assert "The role is now Publisher" in told
    [news] = dms_to(bot, "UJULIE1")
    assert "Your Posit Connect role is now Publisher" in response_text(news)
