"""The role in a request, as the Slack renderers show it: the request form's choice (or Connect's
default role), the approver's confirmation, the confirmation's metadata, and the role lines in
status rows, the Home tab and the messages."""

from __future__ import annotations

import json

import pytest

from bot.slack.interactions import view_selected
from bot.slack.listeners.correlation import correlation_id
from bot.slack.ui.card import approval_card
from bot.slack.ui.describe import role_lines
from bot.slack.ui.home import home_view
from bot.slack.ui.ids import (
    ACTION_APPROVE,
    ACTION_CLOSE,
    ACTION_RETRY,
    ROLE_BLOCK,
    ROLE_INPUT,
    VIEW_APPROVE,
)
from bot.slack.ui.limits import BLOCKS_JSON_BUDGET, MAX_PRIVATE_METADATA
from bot.slack.ui.lists import pending_message, status_message
from bot.slack.ui.messages import (
    decision_notice,
    requester_confirmation,
    requester_outcome_message,
    role_raised_message,
)
from bot.slack.ui.modals import approve_modal, justification_modal
from bot.slack.ui.values import (
    ApprovalForm,
    PersonValue,
    decode_approval_metadata,
    encode_approval_metadata,
)
from bot.workflow.models import RequestKind, Step, StepAction, StepStatus
from bot.workflow.states import RequestState
from tests.support.blockkit import (
    all_text,
    assert_valid_home_view,
    assert_valid_message,
    assert_valid_view,
    request_buttons,
)
from tests.support.samples import make_request

PERSON = PersonValue(username="jdoe", full_name="Jane Doe", email="jane@example.com")
WITH_ROLE = (Step(StepAction.CREATE_ACCOUNT), Step(StepAction.SET_ROLE))


def role_block(view: dict) -> dict | None:
    return next((b for b in view["blocks"] if b.get("block_id") == ROLE_BLOCK), None)


def options(block: dict) -> list[tuple[str, str]]:
    return [(o["text"]["text"], o["value"]) for o in block["element"]["options"]]


# -- the request form --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "roles",
    [("viewer", "publisher"), ("viewer", "publisher", "administrator"), ("publisher",)],
)
def test_request_form_offers_the_roles_labelled_with_the_first_preselected(
    roles: tuple[str, ...],
) -> None:
    view = justification_modal(person=PERSON, private_metadata="{}", roles=roles)
    assert_valid_view(view)
    block = role_block(view)
    assert block is not None and block["type"] == "input"
    assert block["element"]["type"] == "static_select"
    assert block["element"]["action_id"] == ROLE_INPUT
    labels = {"viewer": "Viewer", "publisher": "Publisher", "administrator": "Administrator"}
    assert options(block) == [(labels[role], role) for role in roles]
    assert block["element"]["initial_option"]["value"] == roles[0]
    assert "default role" not in json.dumps(view)


def test_request_form_without_roles_says_connects_default_role() -> None:
    view = justification_modal(person=PERSON, private_metadata="{}", roles=())
    assert_valid_view(view)
    assert role_block(view) is None
    assert "the account gets Connect's default role" in all_text(view)


def test_request_form_says_when_the_roles_could_not_be_checked() -> None:
    view = justification_modal(person=PERSON, private_metadata="{}", roles=None)
    assert_valid_view(view)
    assert role_block(view) is None
    assert "couldn't check" in all_text(view)


# -- the approver's confirmation ---------------------------------------------------------------


def test_confirmation_preselects_the_role_asked_and_says_a_higher_one_is_a_new_question() -> None:
    req = make_request(role_asked="viewer", steps=WITH_ROLE)
    view = approve_modal(req, roles=("viewer", "publisher"), private_metadata='{"i":"x"}')
    assert_valid_view(view)
    assert view["callback_id"] == VIEW_APPROVE
    block = role_block(view)
    assert options(block) == [("Viewer", "viewer"), ("Publisher", "publisher")]
    assert block["element"]["initial_option"]["value"] == "viewer"
    text = all_text(view)
    assert "Role asked: Viewer" in text and "jdoe" in text
    assert "new question" in text


def test_confirmation_says_nothing_of_new_questions_when_no_role_is_higher() -> None:
    req = make_request(role_asked="publisher", steps=WITH_ROLE)
    view = approve_modal(req, roles=("viewer", "publisher"), private_metadata="{}")
    assert_valid_view(view)
    assert "new question" not in all_text(view)


def test_confirmation_without_the_role_asked_among_the_roles_preselects_nothing() -> None:
    # REQUESTABLE_ROLES changed since the request was filed: Slack refuses an initial_option
    # that is not one of the options, so none is given and the approver chooses.
    req = make_request(role_asked="administrator", steps=WITH_ROLE)
    view = approve_modal(req, roles=("viewer", "publisher"), private_metadata="{}")
    assert_valid_view(view)
    assert "initial_option" not in role_block(view)["element"]


def test_confirmation_of_a_role_change_leaves_out_the_role_the_account_has() -> None:
    req = make_request(
        kind=RequestKind.ROLE_CHANGE,
        role_asked="publisher",
        role_before="viewer",
        steps=(Step(StepAction.SET_ROLE),),
    )
    view = approve_modal(req, roles=("viewer", "publisher"), private_metadata="{}")
    assert_valid_view(view)
    assert options(role_block(view)) == [("Publisher", "publisher")]
    assert "role change" in all_text(view) and "Current role: Viewer" in all_text(view)


def test_confirmation_refuses_metadata_over_slacks_limit() -> None:
    req = make_request(role_asked="viewer", steps=WITH_ROLE)
    with pytest.raises(ValueError):
        approve_modal(req, roles=("viewer",), private_metadata="x" * (MAX_PRIVATE_METADATA + 1))


def test_approval_metadata_round_trips() -> None:
    form = ApprovalForm(
        request_id="0123456789abcdef",
        response_url="https://hooks.slack.com/actions/T/1/abc",
        channel="CAPPROVERS",
        from_home=False,
    )
    assert decode_approval_metadata(encode_approval_metadata(form)) == form
    home = ApprovalForm(request_id="0123456789abcdef", from_home=True)
    assert decode_approval_metadata(encode_approval_metadata(home)) == home


def test_approval_metadata_leaves_out_a_response_url_that_does_not_fit() -> None:
    form = ApprovalForm(request_id="0123456789abcdef", response_url="https://x/" + "a" * 3000)
    metadata = encode_approval_metadata(form)
    assert len(metadata) <= MAX_PRIVATE_METADATA
    decoded = decode_approval_metadata(metadata)
    assert decoded is not None and decoded.request_id == form.request_id
    assert decoded.response_url is None


@pytest.mark.parametrize(
    "metadata",
    ["", "{", "[]", "null", '{"i": 5}', '{"i": "../etc"}', '{"r": "https://x"}', '{"i": null}'],
)
def test_approval_metadata_the_bot_did_not_make_is_none(metadata: str) -> None:
    assert decode_approval_metadata(metadata) is None


def test_view_selected_reads_the_chosen_option() -> None:
    view = {
        "state": {
            "values": {
                ROLE_BLOCK: {
                    ROLE_INPUT: {"type": "static_select", "selected_option": {"value": "viewer"}}
                }
            }
        }
    }
    assert view_selected(view, ROLE_BLOCK, ROLE_INPUT) == "viewer"
    assert view_selected({"state": {"values": {}}}, ROLE_BLOCK, ROLE_INPUT) is None
    nothing = {"state": {"values": {ROLE_BLOCK: {ROLE_INPUT: {"selected_option": None}}}}}
    assert view_selected(nothing, ROLE_BLOCK, ROLE_INPUT) is None
    assert view_selected({}, ROLE_BLOCK, ROLE_INPUT) is None


# -- where the roles are shown -----------------------------------------------------------------


def test_status_rows_show_the_kind_and_the_roles() -> None:
    asked = make_request(id="r1", role_asked="publisher", steps=WITH_ROLE)
    granted = make_request(
        id="r2",
        state=RequestState.APPROVED,
        role_asked="publisher",
        role_granted="viewer",
        decided_by="U0APP",
        steps=WITH_ROLE,
    )
    default = make_request(id="r3")
    msg = status_message([asked, granted, default], total=3, permalinks={})
    assert_valid_message(msg)
    text = all_text(msg)
    assert "New account · Role asked: Publisher" in text
    assert "Role asked: Publisher · Role granted: Viewer" in text
    assert "Role asked: Connect's default role" in text


def test_pending_list_and_home_show_the_role_asked() -> None:
    req = make_request(role_asked="publisher", steps=WITH_ROLE)
    pending = pending_message([req], total=1, permalinks={})
    assert_valid_message(pending)
    assert "Role asked: Publisher" in all_text(pending)
    view = home_view(
        viewer_id="U0APP", mine=[], mine_total=0, waiting=[req], waiting_total=1, permalinks={}
    )
    assert_valid_home_view(view)
    assert "Role asked: Publisher" in json.dumps(view)
    assert next(b["action_id"] for b in request_buttons(view)) == ACTION_APPROVE


def test_home_offers_a_retry_for_an_incomplete_request() -> None:
    req = make_request(
        state=RequestState.INCOMPLETE,
        role_asked="publisher",
        role_granted="publisher",
        decided_by="U0APP",
        last_error="Connect refused the role",
        steps=(
            Step(StepAction.CREATE_ACCOUNT, StepStatus.DONE),
            Step(StepAction.SET_ROLE, StepStatus.FAILED, error="Connect refused the role"),
        ),
    )
    view = home_view(
        viewer_id="U0OTHER", mine=[], mine_total=0, waiting=[req], waiting_total=1, permalinks={}
    )
    assert_valid_home_view(view)
    assert [b["action_id"] for b in request_buttons(view)] == [ACTION_RETRY, ACTION_CLOSE]
    assert "Set the role to Publisher failed: Connect refused the role" in json.dumps(view)


def test_requester_confirmation_and_decision_notice_show_the_roles() -> None:
    req = make_request(role_asked="publisher", steps=WITH_ROLE)
    confirmation = requester_confirmation(req, card_permalink=None)
    assert_valid_message(confirmation)
    assert "Role asked: Publisher" in all_text(confirmation)
    decided = make_request(
        state=RequestState.APPROVED, role_asked="publisher", role_granted="viewer"
    )
    notice = decision_notice(decided)
    assert_valid_message(notice)
    assert "Role granted: Viewer" in all_text(notice)


def test_role_raised_message_says_nothing_was_approved_and_what_is_asked_now() -> None:
    req = make_request(
        role_asked="publisher", raised_by="U0APP", raised_from="viewer", steps=WITH_ROLE
    )
    msg = role_raised_message(req)
    assert_valid_message(msg)
    text = all_text(msg)
    assert "now asks for Publisher" in text and "nothing was approved" in text
    assert "raised from Viewer" in text


def test_a_confirmations_submission_is_logged_under_its_request_id() -> None:
    metadata = encode_approval_metadata(ApprovalForm(request_id="0123456789abcdef"))
    body = {"view": {"callback_id": VIEW_APPROVE, "private_metadata": metadata}}
    assert correlation_id(body) == "0123456789abcdef"
    forged = {"view": {"callback_id": VIEW_APPROVE, "private_metadata": '{"i": "x"}'}}
    assert correlation_id(forged) != "x"


def test_request_form_says_what_each_role_offered_allows() -> None:
    view = justification_modal(person=PERSON, private_metadata="{}", roles=("viewer", "publisher"))
    hint = role_block(view)["hint"]["text"]
    assert "Viewers see" in hint and "Publishers can also publish" in hint
    assert "Administrators" not in hint


# -- what the record says, and the confirmation's memory -----------------------------------------


def test_the_confirmation_remembers_the_role_it_showed() -> None:
    form = ApprovalForm(request_id="0123456789abcdef", channel="C1", role_asked="viewer")
    assert decode_approval_metadata(encode_approval_metadata(form)) == form
    forged = json.dumps({"i": "0123456789abcdef", "a": ["administrator"]})
    decoded = decode_approval_metadata(forged)
    assert decoded is not None and decoded.role_asked is None


@pytest.mark.parametrize(
    ("overrides", "want", "never"),
    [
        (
            {
                "state": RequestState.ALREADY_EXISTS,
                "role_asked": "publisher",
                "role_before": "viewer",
            },
            "Role in Connect: Viewer (unchanged",
            "Role granted",
        ),
        (
            {
                "state": RequestState.INCOMPLETE,
                "role_asked": "publisher",
                "role_granted": "publisher",
            },
            "Role approved: Publisher (not set yet)",
            "Role granted",
        ),
        (
            {"state": RequestState.APPROVED, "role_asked": None, "role_before": "viewer"},
            "Role in Connect: Viewer",
            "Role granted",
        ),
        (
            {
                "state": RequestState.APPROVED,
                "kind": RequestKind.ROLE_CHANGE,
                "role_asked": "publisher",
                "role_granted": "publisher",
                "role_before": "viewer",
            },
            "Role granted: Publisher",
            "Current role",
        ),
    ],
)
def test_role_lines_say_what_connect_has(overrides: dict, want: str, never: str) -> None:
    text = role_lines(make_request(**overrides))
    assert want in text and never not in text


def test_a_closed_request_says_who_closed_it_and_what_connect_had() -> None:
    req = make_request(
        state=RequestState.CLOSED,
        decided_by="W0APPROVER",
        closed_by="U012ABCDEF",
        role_asked="publisher",
        role_granted="publisher",
        outcome_note="Closed with its failed step not done. The account's role in Connect: Viewer.",
        steps=(
            Step(StepAction.CREATE_ACCOUNT, StepStatus.DONE),
            Step(StepAction.SET_ROLE, StepStatus.FAILED, error="refused"),
        ),
    )
    card = approval_card(req, connect_url="https://connect.example.com")
    assert_valid_message(card)
    text = json.dumps(card)
    assert "<@U012ABCDEF> closed the request" in text and "role in Connect: Viewer" in text
    assert "actions" not in [b["type"] for b in card["blocks"]]
    told = requester_outcome_message(req, connect_url="https://connect.example.com")
    assert_valid_message(told)
    assert "closed it as it stood" in json.dumps(told)


@pytest.mark.parametrize("state", [RequestState.INCOMPLETE, RequestState.CLOSED])
def test_the_longest_card_with_steps_fits_slacks_budget(state: RequestState) -> None:
    long = "<&>*" * 2000
    req = make_request(
        state=state,
        full_name=long,
        username=long,
        email=long,
        justification=long,
        last_error=long,
        outcome_note=long,
        deny_reason=long,
        role_asked="publisher",
        role_granted="publisher",
        decided_by="W0APPROVER",
        closed_by="W0APPROVER",
        connect_guid="0b6d1a5e-1111-4222-8333-444455556666",
        steps=(
            Step(StepAction.CREATE_ACCOUNT, StepStatus.DONE, note=long),
            Step(StepAction.SET_ROLE, StepStatus.FAILED, error=long, note=long),
            Step(StepAction.SET_ROLE, StepStatus.FAILED, error=long),
        ),
    )
    card = approval_card(req, connect_url="https://connect.example.com")
    assert_valid_message(card)
    assert len(json.dumps(card["blocks"])) <= BLOCKS_JSON_BUDGET
