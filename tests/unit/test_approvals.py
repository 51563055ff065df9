"""APPROVALS_REQUIRED on its own: parsing, what a role needs, which approvals count, and how the
card and the requester's message say it."""

from __future__ import annotations

import json

import pytest

from bot.slack.ui.card import approval_card
from bot.slack.ui.messages import requester_outcome_message
from bot.workflow.approvals import (
    ApprovalsRequired,
    counting,
    deciding,
    parse_approvals_required,
)
from bot.workflow.models import Approval
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message
from tests.support.samples import make_request

CONNECT = "https://connect.example.com"


def test_parse() -> None:
    assert parse_approvals_required(" viewer:1, Administrator : 2 ,") == {
        "viewer": 1,
        "administrator": 2,
    }
    assert parse_approvals_required("") == {}
    with pytest.raises(ValueError, match="named twice"):
        parse_approvals_required("administrator:2,administrator:3")
    with pytest.raises(ValueError, match="between 1 and 5"):
        parse_approvals_required("viewer:6")


def test_a_request_without_a_role_needs_as_many_as_viewer_or_publisher() -> None:
    required = ApprovalsRequired({"viewer": 1, "publisher": 3, "administrator": 2})
    assert required.needed(None) == 3  # Connect's default role may be Publisher
    assert required.needed("viewer") == 1
    assert ApprovalsRequired().needed("administrator") == 1


def test_only_the_current_round_counts_and_decides() -> None:
    req = make_request(
        role_asked="publisher",
        role_granted="publisher",
        state=RequestState.APPROVED,
        decided_by="U3",
        approval_round=1,
        approvals=(
            Approval("U1", "publisher", round=0),
            Approval("U2", "publisher", round=0),
            Approval("U1", "publisher", round=1),
            Approval("U3", "publisher", round=1),
        ),
    )
    assert [a.approver_id for a in counting(req)] == ["U1", "U3"]
    assert [a.approver_id for a in deciding(req)] == ["U1", "U3"]


def test_an_expired_request_with_some_approvals_says_who_approved() -> None:
    req = make_request(
        state=RequestState.EXPIRED,
        role_asked="administrator",
        approvals=(Approval("U0APPROVER", "administrator"),),
    )
    card = approval_card(
        req, connect_url=CONNECT, approvals=ApprovalsRequired({"administrator": 2})
    )
    assert_valid_message(card)
    text = json.dumps(card["blocks"])
    assert "did not get every approval it needed in time (approved by <@U0APPROVER>)" in text
    assert "nobody approved" not in text
    told = json.dumps(requester_outcome_message(req, connect_url=CONNECT)["blocks"])
    assert "did not get every approval it needed" in told


def test_a_request_granting_no_role_counts_its_approvals_for_itself() -> None:
    from bot.workflow.models import RequestKind

    req = make_request(kind=RequestKind.NEW_GROUP, group_name="analysts", username="")
    card = approval_card(req, connect_url=CONNECT, approvals=ApprovalsRequired({"viewer": 2}))
    assert_valid_message(card)
    text = json.dumps(card["blocks"])
    assert "Needs 2 approvals (this request)" in text
    assert "default role" not in text
    done = approval_card(
        make_request(
            kind=RequestKind.NEW_GROUP,
            group_name="analysts",
            username="",
            state=RequestState.ALREADY_EXISTS,
        ),
        connect_url=CONNECT,
    )
    assert done["text"].endswith("was in Connect already")
