"""The renderers of role changes, alone: roles and locks in search results, the Change role
button, results of a server without directory search, the role-change form and what replaces
it, and what the form carries back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack.interactions import view_selected
from bot.slack.ui import ids
from bot.slack.ui.ids import (
    ACTION_CHANGE_ROLE,
    ACTION_REQUEST_ACCOUNT,
    JUSTIFICATION_BLOCK,
    JUSTIFICATION_INPUT,
    ROLE_BLOCK,
    ROLE_INPUT,
    VIEW_ROLE_CHANGE,
)
from bot.slack.ui.modals import (
    role_change_loading_view,
    role_change_modal,
    role_form_problem_view,
)
from bot.slack.ui.search import FIRST_LOGIN_NOTE, no_results_message, search_results_message
from bot.slack.ui.values import (
    RoleChangeTarget,
    decode_role_change_metadata,
    encode_role_change_metadata,
    is_account_guid,
)
from bot.workflow.models import Account, DirectoryEntry, DirectoryPage
from bot.workflow.outcomes import RoleForm, RoleFormProblem
from tests.support.blockkit import (
    all_text,
    assert_valid_message,
    assert_valid_view,
    buttons,
    plain_texts,
)
from tests.support.samples import GUID
from tests.support.strategies import (
    PROPERTY,
    TICKET_MARK,
    UNTRUSTED,
    assert_untrusted_only_in_plain_text,
    maybe_empty,
    search_results,
    untrusted,
)

CONNECT = "https://connect.example.com/"
RESPONSE_URL = "https://hooks.slack.com/actions/T0/1/abc"


def entry(**overrides: object) -> DirectoryEntry:
    fields: dict = {"username": "jdoe", "first_name": "Jane", "last_name": "Doe"}
    fields.update(overrides)
    return DirectoryEntry(**fields)


def page(*people: DirectoryEntry) -> DirectoryPage:
    return DirectoryPage(entries=people, total=len(people))


def rows(msg: dict) -> list[dict]:
    return [b for b in msg["blocks"] if b["type"] == "section"]


# --- search results ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "locked", "shown"),
    [
        ("viewer", False, "Role: Viewer"),
        ("publisher", False, "Role: Publisher"),
        ("administrator", True, "Role: Administrator · locked"),
        ("publisher", True, "Role: Publisher · locked"),
        (None, False, "Role: role unknown"),
        ("superuser", False, "Role: a role the bot does not know"),
    ],
)
def test_accounts_show_their_role_and_lock(role: str | None, locked: bool, shown: str) -> None:
    msg = search_results_message(
        "j", page(entry(guid=GUID, user_role=role, locked=locked)), connect_url=CONNECT
    )
    assert_valid_message(msg)
    [row] = rows(msg)
    assert row["text"]["type"] == "plain_text"
    assert row["text"]["text"].splitlines()[-1] == shown


def test_people_without_an_account_show_no_role() -> None:
    msg = search_results_message("j", page(entry(user_role="")), connect_url=CONNECT)
    assert "Role:" not in all_text(msg)


def test_accounts_get_change_role_when_roles_may_change() -> None:
    msg = search_results_message(
        "j",
        page(entry(guid=GUID, user_role="viewer"), entry(username="newbie")),
        connect_url=CONNECT,
        role_changes=True,
    )
    assert_valid_message(msg)
    account_row, person_row = rows(msg)
    change = account_row["accessory"]
    assert change["action_id"] == ACTION_CHANGE_ROLE and change["text"]["text"] == "Change role"
    assert change["value"] == GUID, "the button carries the GUID, nothing else"
    assert person_row["accessory"]["action_id"] == ACTION_REQUEST_ACCOUNT


def test_no_change_role_when_the_provider_owns_roles() -> None:
    msg = search_results_message(
        "j", page(entry(guid=GUID, user_role="viewer")), connect_url=CONNECT, role_changes=False
    )
    assert not buttons(msg)


def test_no_change_role_for_a_guid_that_cannot_be_carried() -> None:
    odd = "../v1/user?x=<!channel>"
    msg = search_results_message(
        "j", page(entry(guid=odd, user_role="viewer")), connect_url=CONNECT, role_changes=True
    )
    assert_valid_message(msg)
    assert not buttons(msg)


def test_accounts_only_results_say_new_accounts_come_at_first_login() -> None:
    msg = search_results_message(
        "ju",
        page(entry(guid=GUID, user_role="publisher", locked=True)),
        connect_url=CONNECT,
        accounts_only=True,
        role_changes=True,
    )
    assert_valid_message(msg)
    head, note, row, footer = msg["blocks"]
    assert head["type"] == "header" and "Posit Connect accounts matching" in head["text"]["text"]
    assert FIRST_LOGIN_NOTE in all_text(note)
    assert "first log in" in FIRST_LOGIN_NOTE
    # A locked account is offered an unlock rather than a role change.
    assert row["accessory"]["action_id"] == ids.ACTION_REQUEST_UNLOCK
    assert "Publisher · locked" in row["text"]["text"]
    assert "1 match" in all_text(footer)
    assert "Posit Connect accounts matching" in msg["text"]


def test_no_accounts_found_says_the_same() -> None:
    msg = no_results_message("<!channel>", accounts_only=True)
    assert_valid_message(msg)
    assert "No Posit Connect account matches" in all_text(msg)
    assert FIRST_LOGIN_NOTE in all_text(msg)
    empty = search_results_message("x", page(), connect_url=CONNECT, accounts_only=True)
    assert empty == no_results_message("x", accounts_only=True)


def test_accounts_only_results_respect_the_block_cap() -> None:
    people = [entry(username=f"u{i}", guid=GUID, user_role="viewer") for i in range(80)]
    msg = search_results_message(
        "u",
        DirectoryPage(tuple(people), total=80),
        connect_url=CONNECT,
        accounts_only=True,
        role_changes=True,
    )
    assert_valid_message(msg)
    assert len(msg["blocks"]) <= 50
    shown = len(buttons(msg))
    assert f"{80 - shown} more" in all_text(msg["blocks"][-1])


@PROPERTY
@given(
    results=search_results(),
    prefix=untrusted("P", long=False),
    accounts_only=st.booleans(),
    role_changes=st.booleans(),
)
def test_results_with_roles_are_always_valid(
    results: tuple[list[DirectoryEntry], int],
    prefix: str,
    accounts_only: bool,
    role_changes: bool,
) -> None:
    people, total = results
    msg = search_results_message(
        prefix,
        DirectoryPage(tuple(people), total=total),
        connect_url=CONNECT,
        accounts_only=accounts_only,
        role_changes=role_changes,
    )
    assert_valid_message(msg)
    assert_untrusted_only_in_plain_text(msg)
    assert TICKET_MARK not in json.dumps(msg)
    assert f"{UNTRUSTED}R" not in json.dumps(msg, ensure_ascii=False), "a role is never echoed"
    for row, person in zip(rows(msg), people, strict=False):
        button = row.get("accessory")
        if person.has_account:
            assert "Role: " in row["text"]["text"]
            assert ("· locked" in row["text"]["text"].splitlines()[-1]) is person.locked
            if button is None:
                assert not (role_changes or person.locked) or not is_account_guid(person.guid)
            elif person.locked:
                assert button["action_id"] == ids.ACTION_REQUEST_UNLOCK
                assert button["value"] == person.guid and UNTRUSTED not in button["value"]
            else:
                assert role_changes and button["action_id"] == ACTION_CHANGE_ROLE
                assert button["value"] == person.guid and UNTRUSTED not in button["value"]


# --- the form ------------------------------------------------------------------------------------


def account(**overrides: object) -> Account:
    fields: dict = {
        "guid": GUID,
        "username": "jdoe",
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane@example.com",
        "user_role": "viewer",
    }
    fields.update(overrides)
    return Account(**fields)


def test_the_form_offers_the_roles_it_is_given() -> None:
    form = RoleForm(account(user_role="viewer", locked=True), ("publisher", "administrator"))
    metadata = encode_role_change_metadata(GUID, "jdoe", RESPONSE_URL)
    view = role_change_modal(form=form, private_metadata=metadata)
    assert_valid_view(view)
    assert view["callback_id"] == VIEW_ROLE_CHANGE and view["private_metadata"] == metadata
    text = all_text(view)
    assert "Jane Doe" in text and "Role: Viewer · locked" in text
    [select_block] = [b for b in view["blocks"] if b.get("block_id") == ROLE_BLOCK]
    select = select_block["element"]
    assert select["type"] == "static_select" and select["action_id"] == ROLE_INPUT
    assert [(o["text"]["text"], o["value"]) for o in select["options"]] == [
        ("Publisher", "publisher"),
        ("Administrator", "administrator"),
    ]
    assert "initial_option" not in select, "nothing is chosen for the requester"
    [justification] = [b for b in view["blocks"] if b.get("block_id") == JUSTIFICATION_BLOCK]
    assert justification["element"]["action_id"] == JUSTIFICATION_INPUT


@PROPERTY
@given(
    full_name=maybe_empty(untrusted("F")),
    username=untrusted("U"),
    email=maybe_empty(untrusted("M")),
    role=st.one_of(st.none(), untrusted("R", long=False)),
)
def test_the_form_keeps_untrusted_names_in_plain_text(
    full_name: str, username: str, email: str, role: str | None
) -> None:
    form = RoleForm(
        Account(GUID, username, first_name=full_name, email=email, user_role=role), ("viewer",)
    )
    view = role_change_modal(
        form=form, private_metadata=encode_role_change_metadata(GUID, username, RESPONSE_URL)
    )
    assert_valid_view(view)
    assert_untrusted_only_in_plain_text(view)


def test_the_form_refuses_metadata_slack_would_cut() -> None:
    with pytest.raises(ValueError, match="private_metadata"):
        role_change_modal(form=RoleForm(account(), ("publisher",)), private_metadata="x" * 3001)


def test_the_loading_view_is_valid() -> None:
    view = role_change_loading_view()
    assert_valid_view(view)
    assert "submit" not in view


def test_each_reason_for_no_form_is_its_own_words() -> None:
    texts = set()
    for problem in RoleFormProblem:
        view = role_form_problem_view(problem, role="publisher")
        assert_valid_view(view)
        assert "submit" not in view
        texts.add(" ".join(plain_texts(view)))
    assert len(texts) == len(RoleFormProblem)
    no_other = all_text(role_form_problem_view(RoleFormProblem.NO_OTHER_ROLE, role="publisher"))
    assert "Publisher" in no_other


# --- what the form carries back ------------------------------------------------------------------


def test_role_change_metadata_round_trip() -> None:
    metadata = encode_role_change_metadata(GUID, "jdoe", RESPONSE_URL)
    assert decode_role_change_metadata(metadata) == (RoleChangeTarget(GUID, "jdoe"), RESPONSE_URL)


def test_a_long_response_url_is_left_out() -> None:
    metadata = encode_role_change_metadata(GUID, "u" * 1000, "https://x/" + "r" * 3000)
    assert len(metadata) <= 3000
    target, response_url = decode_role_change_metadata(metadata)
    assert target is not None and target.guid == GUID and response_url is None


@pytest.mark.parametrize(
    "metadata",
    [
        "",
        "not json",
        "[]",
        "{}",
        '{"g": 5}',
        '{"g": "../v1/user"}',
        '{"g": "' + "a" * 65 + '"}',
        '{"g": "abc", "u": 3}',
        json.dumps({"v": '{"u": "julie2"}', "r": RESPONSE_URL}),  # a justification form's
    ],
)
def test_metadata_this_bot_did_not_make_is_refused(metadata: str) -> None:
    assert decode_role_change_metadata(metadata) == (None, None)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({ROLE_BLOCK: {ROLE_INPUT: {"selected_option": {"value": "publisher"}}}}, "publisher"),
        ({ROLE_BLOCK: {ROLE_INPUT: {"selected_option": None}}}, None),
        ({ROLE_BLOCK: {ROLE_INPUT: {"selected_option": "publisher"}}}, None),
        ({}, None),
    ],
)
def test_the_chosen_role_is_read_from_the_submission(state: dict, expected: str | None) -> None:
    assert view_selected({"state": {"values": state}}, ROLE_BLOCK, ROLE_INPUT) == expected


def test_usage_says_search_leads_to_role_changes_too() -> None:
    from bot.slack.ui.messages import usage_message

    assert "a new role for someone who has one" in all_text(usage_message())
