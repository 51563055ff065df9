"""Driving the bot through a flow as people do, with signed requests: search and press Request
account, fill in the form, approve; run a command; open and click the Home tab. And reading what
the bot answered: the card, the DMs, the answer to a response_url."""

from __future__ import annotations

from bot.slack.ui import ids
from bot.slack.ui.values import decode_person_value
from tests.support.blockkit import assert_valid_home_view, assert_valid_message, assert_valid_view
from tests.support.bot_under_test import APPROVER, APPROVER_CHANNEL, REQUESTER, BotUnderTest
from tests.support.slack_requests import event_callback_body, home_block_actions_body

PUT = {"method": "PUT", "path": "/__api__/v1/users"}


async def request_button(bot: BotUnderTest, username: str, *, user_id: str = REQUESTER) -> str:
    response, response_url = await bot.command(f"search {username}", user_id=user_id)
    assert response.status_code == 200
    await bot.settle()
    message = (await bot.slack.wait_for_response(response_url))[-1]
    for block in message["blocks"]:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == ids.ACTION_REQUEST_ACCOUNT:
            person = decode_person_value(accessory["value"])
            if person and person.username == username:
                return accessory["value"]
    raise AssertionError(f"no request button for {username}")


async def open_request_form(
    bot: BotUnderTest, username: str, *, user_id: str = REQUESTER
) -> tuple[dict, str]:
    """Press Request account on the ephemeral results; returns (modal, the click's response_url)."""
    value = await request_button(bot, username, user_id=user_id)
    opened = bot.slack.count("views.open")
    response, response_url = await bot.click(
        ids.ACTION_REQUEST_ACCOUNT,
        value,
        user_id=user_id,
        ephemeral=True,
        channel_id="CGENERAL",
    )
    assert response.status_code == 200
    # The form is opened by the listener after ack(), outside the work settle() waits for.
    view = (await bot.slack.wait_for("views.open", count=opened + 1))[-1].args["view"]
    await bot.settle()
    assert_valid_view(view)
    return view, response_url


async def submit_request(
    bot: BotUnderTest,
    view: dict,
    justification: str,
    *,
    user_id: str = REQUESTER,
    role: str | None = None,
):
    """Submit the request form; with `role` (default: the one preselected, if it offers any)."""
    values: dict = {ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: justification}}
    chosen = role or preselected_role(view)
    if chosen:
        values[ids.ROLE_BLOCK] = {ids.ROLE_INPUT: role_state(chosen)}
    response = await bot.submit(
        ids.VIEW_JUSTIFICATION, values, view["private_metadata"], user_id=user_id
    )
    await bot.settle()
    return response


async def file_request(
    bot: BotUnderTest, username: str = "julie2", *, role: str | None = None
) -> str:
    """The whole requester side (asking for `role`, default: the one the form preselects);
    returns the request id carried by the card's buttons."""
    view, _ = await open_request_form(bot, username)
    response = await submit_request(bot, view, "Needs to publish the quarterly report.", role=role)
    assert response.status_code == 200
    card = bot.slack.calls_to("chat.postMessage")[-1]
    assert card.args["channel"] == APPROVER_CHANNEL
    return card_request_id(card.args)


def card_request_id(card: dict) -> str:
    values = {
        element["value"]
        for block in card["blocks"]
        for element in block.get("elements", [])
        if element.get("type") == "button"
    }
    assert len(values) == 1, values
    return values.pop()


def latest_card(bot: BotUnderTest) -> dict:
    updates = bot.slack.calls_to("chat.update")
    return (updates or bot.slack.calls_to("chat.postMessage"))[-1].args


def dms_to(bot: BotUnderTest, user_id: str) -> list[dict]:
    return [
        call.args
        for call in bot.slack.calls_to("chat.postMessage")
        if call.args["channel"] == f"D{user_id}"
    ]


async def click_approve(bot: BotUnderTest, request_id: str, user_id: str = APPROVER):
    """Press Approve on the card; returns (the confirmation it opened or None, response_url)."""
    opened = bot.slack.count("views.open")
    response, response_url = await bot.click(ids.ACTION_APPROVE, request_id, user_id=user_id)
    assert response.status_code == 200
    await bot.settle()
    views = [call.args["view"] for call in bot.slack.calls_to("views.open")[opened:]]
    confirmations = [view for view in views if view.get("callback_id") == ids.VIEW_APPROVE]
    if confirmations:
        assert_valid_view(confirmations[-1])
    return (confirmations[-1] if confirmations else None), response_url


def role_state(role: str) -> dict:
    """A static_select's state as Slack sends it back with a submission."""
    return {
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": role}, "value": role},
    }


def preselected_role(view: dict) -> str | None:
    for block in view["blocks"]:
        if block.get("block_id") == ids.ROLE_BLOCK:
            option = block["element"].get("initial_option")
            return option["value"] if option else None
    return None


async def submit_approval(
    bot: BotUnderTest, view: dict, *, role: str | None = None, user_id: str = APPROVER
):
    """Submit the approval confirmation with `role` (default: the one preselected)."""
    chosen = role or preselected_role(view)
    values = {ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state(chosen)}} if chosen else {}
    response = await bot.submit(ids.VIEW_APPROVE, values, view["private_metadata"], user_id=user_id)
    assert response.status_code == 200
    await bot.settle()
    return response


async def confirm_approval(
    bot: BotUnderTest, request_id: str, user_id: str = APPROVER, *, role: str | None = None
):
    """Press Approve on a request that sets a role and submit the confirmation it opens,
    without waiting for the work after (for tests that look at an approval in flight)."""
    view, _ = await click_approve(bot, request_id, user_id)
    assert view is not None, "Approve opened no confirmation"
    chosen = role or preselected_role(view)
    response = await bot.submit(
        ids.VIEW_APPROVE,
        {ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state(chosen)}},
        view["private_metadata"],
        user_id=user_id,
    )
    assert response.status_code == 200
    return response


async def approve(
    bot: BotUnderTest, request_id: str, user_id: str = APPROVER, *, role: str | None = None
):
    """Press Approve and, when it asks for a confirmation (a request that sets a role), submit
    it with `role` (default: the role asked); returns the click's response_url."""
    view, response_url = await click_approve(bot, request_id, user_id)
    if view is not None:
        await submit_approval(bot, view, role=role, user_id=user_id)
    return response_url


# -- commands and the Home tab -------------------------------------------------------------


async def answer_to(bot: BotUnderTest, response_url: str) -> dict:
    return (await bot.slack.wait_for_response(response_url))[-1]


async def command(bot: BotUnderTest, text: str, user_id: str) -> dict:
    response, response_url = await bot.command(text, user_id=user_id)
    assert response.status_code == 200
    await bot.settle()
    message = await answer_to(bot, response_url)
    assert_valid_message(message)
    return message


async def open_home(bot: BotUnderTest, user_id: str, *, tab: str = "home") -> dict | None:
    """Open the app's Home tab as `user_id`; returns the view the bot published (as sent)."""
    before = bot.slack.count("views.publish")
    event = {"type": "app_home_opened", "user": user_id, "channel": f"D{user_id}", "tab": tab}
    response = await bot.post(event_callback_body(event))
    assert response.status_code == 200
    await bot.settle()
    if bot.slack.count("views.publish") == before:
        return None
    return home_of(bot, user_id)


def home_of(bot: BotUnderTest, user_id: str) -> dict:
    calls = [c for c in bot.slack.calls_to("views.publish") if c.args["user_id"] == user_id]
    assert calls and calls[-1].ok, calls[-1].response if calls else "no views.publish"
    view = calls[-1].args["view"]
    assert_valid_home_view(view)
    return view


async def home_click(bot: BotUnderTest, action_id: str, value: str, user_id: str) -> None:
    body = home_block_actions_body(action_id=action_id, value=value, user_id=user_id)
    response = await bot.post(body)
    assert response.status_code == 200
    await bot.settle()
