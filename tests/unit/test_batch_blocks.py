"""The batch card and the requester's list on their own: a full part at its longest stays within
Slack's limits, untrusted text stays plain, and Approve all / Deny all carry the part."""

from __future__ import annotations

import json

from bot.slack.ui.batch_card import batch_card
from bot.slack.ui.batch_request import (
    batch_value,
    decode_batch_value,
    resolution_message,
)
from bot.slack.ui.ids import ACTION_APPROVE_ALL, ACTION_DENY_ALL
from bot.slack.ui.limits import BLOCKS_JSON_BUDGET, MAX_MESSAGE_BLOCKS
from bot.workflow.approvals import ApprovalsRequired
from bot.workflow.batches import PART_SIZE, EntryStatus, ResolvedEntry
from bot.workflow.models import Approval, DirectoryEntry
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message, buttons
from tests.support.samples import make_request

WORST = "<!channel> *x* " * 200


def worst_member(n: int, state: RequestState) -> object:
    return make_request(
        id=f"{n:016x}",
        state=state,
        username=f"user{n}" + WORST,
        full_name=WORST,
        email=WORST,
        justification=WORST,
        last_error=WORST,
        deny_reason=WORST,
        role_asked="administrator",
        raised_by="U0APPROVER",
        raised_from="viewer",
        batch_id="00112233445566aa",
        batch_part=1,
        approvals=tuple(Approval(f"U0APPROVER{i}", "administrator", WORST) for i in range(4)),
    )


def test_a_full_part_at_its_longest_fits_one_message() -> None:
    for state in (RequestState.PENDING, RequestState.INCOMPLETE, RequestState.DENIED):
        members = [worst_member(n, state) for n in range(PART_SIZE)]
        card = batch_card(members, parts=3, approvals=ApprovalsRequired({"administrator": 5}))
        assert_valid_message(card)
        assert len(card["blocks"]) <= MAX_MESSAGE_BLOCKS
        assert len(json.dumps(card["blocks"])) <= BLOCKS_JSON_BUDGET
        # Untrusted text only in plain_text: no mention or formatting reaches mrkdwn.
        for block in card["blocks"]:
            for element in [block.get("text"), *(block.get("fields") or [])]:
                if element and element["type"] == "mrkdwn":
                    assert "<!channel>" not in element["text"]
        assert "part 2 of 3" in card["blocks"][0]["text"]["text"]


def test_approve_all_and_deny_all_carry_the_batch_and_part() -> None:
    members = [worst_member(n, RequestState.PENDING) for n in range(3)]
    found = {b["action_id"]: b["value"] for b in buttons(batch_card(members, parts=1))}
    assert found[ACTION_APPROVE_ALL] == found[ACTION_DENY_ALL] == "00112233445566aa:1"
    decided = [worst_member(n, RequestState.DENIED) for n in range(3)]
    assert buttons(batch_card(decided, parts=1)) == []


def test_the_list_offers_only_the_ready_people() -> None:
    resolved = [
        ResolvedEntry("alice", EntryStatus.READY, DirectoryEntry("alice", "Alice", "A")),
        ResolvedEntry("bob", EntryStatus.HAS_ACCOUNT, DirectoryEntry("bob", guid="g")),
        ResolvedEntry("hui1.li", EntryStatus.NOT_FOUND),
    ]
    msg = resolution_message(resolved)
    assert_valid_message(msg)
    [request] = buttons(msg)
    assert decode_batch_value(request["value"]) == ["alice"]
    assert "Request access for 1 person" in json.dumps(msg)
    assert batch_value(["x" * 300] * 20) is None, "too long for a button: not offered"
    assert decode_batch_value('["a", 3]') is None and decode_batch_value("nope") is None
