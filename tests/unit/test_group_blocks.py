"""Group renderers alone: `group search` results within Slack's limits (long names, many groups,
names several groups share), the options a group select gets, why a form offers no groups, and
the card of a group request in every state."""

from __future__ import annotations

import pytest

from bot.slack.ui.card import approval_card
from bot.slack.ui.groups import (
    group_blocks,
    group_options,
    group_results_message,
    join_form_problem_view,
)
from bot.slack.ui.ids import ACTION_REQUEST_GROUP, GROUPS_BLOCK
from bot.slack.ui.messages import requester_outcome_message
from bot.workflow.models import (
    DirectoryGroup,
    DirectoryGroupPage,
    GroupRef,
    RequestKind,
    Step,
    StepAction,
    StepStatus,
)
from bot.workflow.outcomes import GroupChoice, GroupChoiceProblem, NoJoinForm
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message, assert_valid_options, assert_valid_view
from tests.support.samples import GUID, make_request


def buttons(message: dict) -> list[str]:
    return [
        block["accessory"]["value"]
        for block in message["blocks"]
        if (block.get("accessory") or {}).get("action_id") == ACTION_REQUEST_GROUP
    ]


def test_many_long_groups_fit_and_the_footer_says_how_many_more() -> None:
    groups = tuple(DirectoryGroup(name=f"g{i}-" + "x" * 4000) for i in range(200))
    message = group_results_message("g", DirectoryGroupPage(groups, total=200))
    assert_valid_message(message)
    assert "of 200 groups" in message["blocks"][-1]["elements"][0]["text"]
    assert buttons(message) == []  # names too long for a button's value


def test_only_groups_not_in_connect_and_of_a_unique_name_get_a_button() -> None:
    page = DirectoryGroupPage(
        (
            DirectoryGroup("analysts"),
            DirectoryGroup("data"),
            DirectoryGroup("data"),
            DirectoryGroup("finance", guid=GUID),
        )
    )
    message = group_results_message("a", page)
    assert_valid_message(message)
    assert buttons(message) == ["analysts"]


def test_options_are_slacks_shape() -> None:
    groups = [GroupRef(f"{i:08d}-0000-4000-8000-000000000000", "n" * 300) for i in range(150)]
    options = group_options(groups)
    assert len(options) == 100
    assert_valid_options(options)


@pytest.mark.parametrize("problem", list(GroupChoiceProblem))
def test_each_reason_for_no_groups_is_said(problem: GroupChoiceProblem) -> None:
    [block] = group_blocks(GroupChoice(problem))
    assert block["type"] == "context" and block["elements"][0]["text"].startswith("Groups:")
    assert_valid_view(join_form_problem_view(NoJoinForm(groups_problem=problem)))
    assert [b.get("block_id") for b in group_blocks(GroupChoice())] == [GROUPS_BLOCK]


@pytest.mark.parametrize("state", list(RequestState))
def test_a_group_requests_card_in_every_state(state: RequestState) -> None:
    request = make_request(
        state=state,
        kind=RequestKind.NEW_GROUP,
        username="",
        full_name="",
        email="",
        group_name="analysts",
        connect_guid=GUID if state is RequestState.APPROVED else None,
        steps=(Step(StepAction.CREATE_GROUP, status=StepStatus.DONE),),
        decided_by="U0APPROVER",
        last_error="Connect failed" if state is RequestState.INCOMPLETE else None,
    )
    card = approval_card(request, connect_url="https://connect.example.com")
    assert_valid_message(card)
    assert "analysts" in card["text"]
    assert "Open this person" not in str(card)
    assert_valid_message(requester_outcome_message(request, connect_url="https://c.example.com"))
