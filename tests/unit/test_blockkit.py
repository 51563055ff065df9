"""The one Block Kit validator (tests/support/blockkit.py) and its two users: the fake Slack,
which must refuse what Slack refuses, and the tests' assert_valid_* checks, which add the bot's
house rules. Every payload below was let through by one of the two validators this one replaced
(the fake's own rules, and tests/blockkit_limits.py): where they differed, the stricter holds,
for both users."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.blockkit import (
    assert_valid_home_view,
    assert_valid_message,
    assert_valid_view,
    message_problem,
    view_problems,
)


def text(value: str, kind: str = "mrkdwn", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "text": value, **extra}


def section(value: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": text(value), **extra}


def button(**extra: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": "go", "text": text("Go", "plain_text"), **extra}


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def message(*blocks: dict[str, Any], fallback: str = "fallback") -> dict[str, Any]:
    return {"text": fallback, "blocks": list(blocks)}


def text_input(**extra: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": "reason",
        "label": text("Why?", "plain_text"),
        "element": {"type": "plain_text_input", "action_id": "value", **extra},
    }


def modal(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    view = {
        "type": "modal",
        "callback_id": "cb",
        "title": text("Request access", "plain_text"),
        "submit": text("Send", "plain_text"),
        "blocks": list(blocks) or [section()],
    }
    view.update(extra)
    return view


def home(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "home", "blocks": list(blocks) or [section()], **extra}


# Half a section of emoji: 12 characters each in the pessimistic measure, 1 in compact JSON.
EMOJI = "😀" * 1500
CONFIRM_WITHOUT_TITLE = {"text": text("Sure?"), "confirm": text("Yes", "plain_text")}

# Slack refuses these; the fake (one of the old validators or the other) let each through.
SLACK_REFUSES_MESSAGES = {
    "blank text": message(section("   ")),
    "emoji on mrkdwn": message({"type": "section", "text": text("hi", emoji=True)}),
    "verbatim on plain_text": message(
        {"type": "header", "text": text("Hi", "plain_text", verbatim=True)}
    ),
    "empty block_id": message(section(block_id="")),
    "empty action_id": message(actions(button(action_id=""))),
    "empty button value": message(actions(button(value=""))),
    "empty button url": message(actions(button(url=""))),
    "null block_id": message(section(block_id=None)),
    "confirm without a title": message(actions(button(confirm=CONFIRM_WITHOUT_TITLE))),
    "over the blocks budget measured pessimistically": message(*[section(EMOJI)] * 5),
}
SLACK_REFUSES_MODALS = {
    "min_length above max_length": modal(text_input(min_length=50, max_length=10)),
    "empty callback_id": modal(callback_id=""),
    "null submit": modal(submit=None),
    "null private_metadata": modal(private_metadata=None),
    "hint too long": modal({**text_input(), "hint": text("h" * 2001, "plain_text")}),
}
SLACK_REFUSES_HOME_TABS = {
    "a title": home(title=text("Home", "plain_text")),
    "a submit button": home(submit=text("Send", "plain_text")),
}

# Slack takes these; the bot never sends them (the tests' house rules).
HOUSE_RULES_REFUSE_MESSAGES = {
    "no fallback text": {"blocks": [section()]},
    "blank fallback text": message(section(), fallback="  "),
    "fallback text over 4,000 characters": message(section(), fallback="x" * 4001),
    "no blocks": {"text": "only text"},
    "an empty list of blocks": message(),
    "an image block": message({"type": "image", "image_url": "https://x/i.png", "alt_text": "i"}),
    "a select element": message(
        actions({"type": "static_select", "action_id": "s", "options": []})
    ),
    "a button without action_id": message(
        actions({"type": "button", "text": text("Go", "plain_text"), "value": "v"})
    ),
    "an image in a context block": message(
        {"type": "context", "elements": [{"type": "image", "image_url": "u", "alt_text": "a"}]}
    ),
    "an input block in a message": message(text_input()),
}
HOUSE_RULES_REFUSE_HOMES = {
    "an input on the Home tab": home(text_input()),
    "a view over the blocks budget": home(*[section(EMOJI)] * 5),
}


@pytest.mark.parametrize("name", SLACK_REFUSES_MESSAGES)
def test_the_fake_and_the_tests_refuse_what_slack_refuses_in_a_message(name: str) -> None:
    msg = SLACK_REFUSES_MESSAGES[name]
    assert message_problem(msg) is not None, "the fake Slack would have accepted it"
    with pytest.raises(AssertionError):
        assert_valid_message(msg)


@pytest.mark.parametrize("name", SLACK_REFUSES_MODALS)
def test_the_fake_and_the_tests_refuse_what_slack_refuses_in_a_modal(name: str) -> None:
    view = SLACK_REFUSES_MODALS[name]
    assert view_problems(view), "the fake Slack would have accepted it"
    with pytest.raises(AssertionError):
        assert_valid_view(view)


@pytest.mark.parametrize("name", SLACK_REFUSES_HOME_TABS)
def test_the_fake_and_the_tests_refuse_what_slack_refuses_in_a_home_tab(name: str) -> None:
    view = SLACK_REFUSES_HOME_TABS[name]
    assert view_problems(view), "the fake Slack would have accepted it"
    with pytest.raises(AssertionError):
        assert_valid_home_view(view)


@pytest.mark.parametrize("name", HOUSE_RULES_REFUSE_MESSAGES)
def test_house_rules_refuse_what_slack_takes_but_the_bot_never_sends(name: str) -> None:
    msg = HOUSE_RULES_REFUSE_MESSAGES[name]
    assert message_problem(msg) is None, "Slack takes it: the fake must too"
    with pytest.raises(AssertionError):
        assert_valid_message(msg)


@pytest.mark.parametrize("name", HOUSE_RULES_REFUSE_HOMES)
def test_house_rules_refuse_home_tabs_slack_takes(name: str) -> None:
    view = HOUSE_RULES_REFUSE_HOMES[name]
    assert view_problems(view) == [], "Slack takes it: the fake must too"
    with pytest.raises(AssertionError):
        assert_valid_home_view(view)


def test_what_the_bot_sends_passes_both() -> None:
    card = message(
        {"type": "header", "text": text("Account request", "plain_text", emoji=True)},
        section(
            block_id="who",
            fields=[text("*Name*\nJulie"), text("*Email*\njulie@example.com")],
            accessory=button(value="v", style="primary"),
        ),
        {"type": "context", "elements": [text("Filed by <@U1>")]},
        {"type": "divider"},
        actions(button(value="r1", style="primary"), button(action_id="deny", value="r1")),
    )
    assert message_problem(card) is None
    assert_valid_message(card)
    form = modal(text_input(min_length=3, max_length=1000), private_metadata="")
    assert view_problems(form) == []
    assert_valid_view(form)
    tab = home(section(), actions(button(value="r1")))
    assert view_problems(tab) == []
    assert_valid_home_view(tab)
