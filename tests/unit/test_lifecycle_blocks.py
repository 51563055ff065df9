"""Builders and parsing for the request lifecycle: reminders, cancelling, the pending and status
lists and the Home tab. Pure: no Slack, no database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack.command import Help, Pending, Status, UsageProblem, parse_command
from bot.slack.ui.card import approval_card
from bot.slack.ui.home import HOME_MINE_LIMIT, HOME_WAITING_LIMIT, home_view
from bot.slack.ui.ids import (
    ACTION_APPROVE,
    ACTION_APPROVE_WITH_NOTE,
    ACTION_CANCEL,
    ACTION_CLOSE,
    ACTION_DENY,
    ACTION_RETRY,
)
from bot.slack.ui.limits import BLOCKS_JSON_BUDGET, MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS
from bot.slack.ui.lists import pending_message, status_message
from bot.slack.ui.messages import (
    approver_reminder,
    escalation_message,
    requester_confirmation,
    requester_outcome_message,
    usage_message,
)
from bot.slack.ui.refusals import approval_refusal, cancel_refusal, pending_refusal, refusal_message
from bot.workflow.models import BOT_REQUESTER, ProvisioningRequest, RequestKind, steps_for
from bot.workflow.outcomes import Refusal
from bot.workflow.states import RequestState
from tests.support.blockkit import (
    all_text,
    assert_fallback_inert,
    assert_valid_home_view,
    assert_valid_message,
    buttons,
    mrkdwn_texts,
    plain_texts,
    request_buttons,
)
from tests.support.samples import NOW, make_request
from tests.support.strategies import (
    PROPERTY,
    assert_no_ticket,
    assert_untrusted_only_in_plain_text,
    requests,
)

APPROVERS = "CAPPROVERS"
FILLER = ["😀" * 5000, '"\\' * 3000, "*<!channel>&" * 500]
request_lists = st.lists(requests, max_size=25, unique_by=lambda r: r.id)


def worst_case(
    n: int, filler: str, state: RequestState = RequestState.PENDING
) -> ProvisioningRequest:
    return make_request(
        id=f"{n:032x}",
        state=state,
        username=filler,
        full_name=filler,
        email=filler,
        justification=filler,
        decided_by="W0APPROVER",
        decided_at=NOW,
        deny_reason=filler,
        connect_guid=filler,
        last_error=filler,
        requester_id=f"U{n:08d}",
    )


def links(reqs: list[ProvisioningRequest]) -> dict[str, str]:
    return {
        r.id: f"https://test.slack.com/archives/{APPROVERS}/p{n:016d}" for n, r in enumerate(reqs)
    }


# --- parser -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["pending", "PENDING", "  Pending  "])
def test_parse_pending(text: str) -> None:
    assert parse_command(text) == Pending()


@pytest.mark.parametrize("text", ["status", "Status", "\tSTATUS "])
def test_parse_status(text: str) -> None:
    assert parse_command(text) == Status()


@pytest.mark.parametrize("text", ["pending jan", "status all"])
def test_bare_subcommands_refuse_arguments(text: str) -> None:
    parsed = parse_command(text)
    assert parsed == Help(UsageProblem.TAKES_NOTHING, typed=text.split()[0])
    assert "takes nothing" in all_text(usage_message(parsed.problem, parsed.typed))


def test_usage_lists_the_new_commands() -> None:
    msg = usage_message()
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    text = all_text(msg)
    assert "/connect-user pending" in text and "/connect-user status" in text
    assert "approvers only" in text


# --- card, refusals, confirmation ---------------------------------------------------------------


def test_expired_card_has_no_buttons_and_says_so() -> None:
    req = make_request(state=RequestState.EXPIRED, updated_at=NOW + timedelta(days=7))
    msg = approval_card(req, connect_url="https://connect.example.com/")
    assert_valid_message(msg)
    assert buttons(msg) == []
    assert "Expired" in all_text(msg) and "ask again" in all_text(msg)


def test_cancelled_card_names_who_cancelled() -> None:
    req = make_request(state=RequestState.CANCELLED, decided_by="U0REQ", decided_at=NOW)
    msg = approval_card(req, connect_url="https://connect.example.com/")
    assert buttons(msg) == []
    assert any("Cancelled by <@U0REQ>" in t for t in mrkdwn_texts(msg))


def test_refusal_on_an_expired_or_cancelled_card_does_not_say_decided() -> None:
    expired = approval_refusal(Refusal.ALREADY_DECIDED, state=RequestState.EXPIRED)["text"]
    assert "expired" in expired and "already decided" not in expired
    assert "no longer be decided" in expired
    cancelled = approval_refusal(Refusal.ALREADY_DECIDED, state=RequestState.CANCELLED)["text"]
    assert "cancelled" in cancelled and "already decided" not in cancelled


def test_confirmation_offers_cancel_only_while_pending() -> None:
    pending = requester_confirmation(make_request(), card_permalink=None)
    assert_valid_message(pending)
    (button,) = buttons(pending)
    assert button["action_id"] == ACTION_CANCEL and button["value"] == "req-1"
    for state in set(RequestState) - {RequestState.PENDING}:
        assert buttons(requester_confirmation(make_request(state=state), card_permalink=None)) == []


@pytest.mark.parametrize(
    ("kind", "state", "expected"),
    [
        (Refusal.NOT_REQUESTER, None, "Only the person who asked"),
        (
            Refusal.ALREADY_DECIDED,
            RequestState.APPROVED,
            "no longer be cancelled: it is approved",
        ),
        (Refusal.ALREADY_DECIDED, RequestState.EXPIRED, "it is expired"),
        (Refusal.ALREADY_DECIDED, None, "This request can no longer be cancelled."),
        (Refusal.NOT_FOUND, None, "no longer exists"),
        # A decision's reason: cancelling never refuses for it.
        (Refusal.CANNOT_CHECK, None, "could not be completed"),
    ],
)
def test_cancel_refusals(kind: Refusal, state: RequestState | None, expected: str) -> None:
    msg = cancel_refusal(kind, state=state)
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    assert expected in msg["text"]


def test_expired_outcome_dm_says_how_long_and_what_next() -> None:
    req = make_request(state=RequestState.EXPIRED, updated_at=NOW + timedelta(days=7, minutes=1))
    msg = requester_outcome_message(req, connect_url="https://connect.example.com/")
    assert_valid_message(msg)
    assert "expired" in msg["text"]
    assert "within 7 days" in all_text(msg) and "/connect-user search" in all_text(msg)


# --- reminder -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("waited", "expected"),
    [
        (timedelta(days=1, hours=2), "1 day"),
        (timedelta(days=3), "3 days"),
        (timedelta(hours=5, minutes=59), "5 hours"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=5), "less than a minute"),
    ],
)
def test_reminder_says_how_long_it_waited(waited: timedelta, expected: str) -> None:
    msg = approver_reminder(make_request(), now=NOW + waited)
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    assert f"waiting for {expected}" in msg["text"]


def test_reminder_keeps_untrusted_names_out_of_mrkdwn() -> None:
    msg = approver_reminder(make_request(username="<!channel> *x*"), now=NOW)
    assert_untrusted_only_in_plain_text(msg)


def test_escalation_says_how_long_who_asked_and_links_the_card() -> None:
    req = make_request(username="<!channel> *x*", full_name="<@U0EVIL>", role_asked="publisher")
    link = "https://example.slack.com/archives/C1/p1700000000000100"
    msg = escalation_message(req, card_permalink=link, now=NOW + timedelta(hours=5))
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    assert_untrusted_only_in_plain_text(msg)
    text = all_text(msg)
    assert "waited for 5 hours" in text and "<@U0REQ>" in text and link in text
    assert "Role asked: Publisher" in text


# --- pending and status lists -------------------------------------------------------------------


def test_pending_message_lists_oldest_first_with_links() -> None:
    reqs = [make_request(id=f"r{n}", username=f"user{n}") for n in range(3)]
    msg = pending_message(reqs, total=3, permalinks=links(reqs))
    assert_valid_message(msg)
    assert "3 requests waiting" in msg["text"]
    listed = [t.split(" ")[0] for t in plain_texts(msg) if "(user" in t]
    assert listed == ["Jane", "Jane", "Jane"]
    order = [t[t.index("(user") + 1 : t.index(")")] for t in plain_texts(msg) if "(user" in t]
    assert order == ["user0", "user1", "user2"]  # as the store gave them: oldest first
    assert sum("Open the card" in t for t in mrkdwn_texts(msg)) == 3
    assert buttons(msg) == []  # decisions happen on the card or the Home tab


def test_pending_message_empty_and_refusals() -> None:
    assert "Nothing is waiting" in all_text(pending_message([], total=0, permalinks={}))
    refusal = pending_refusal(Refusal.NOT_APPROVER, approver_channel=APPROVERS)
    assert_valid_message(refusal)
    assert_fallback_inert(refusal["text"])
    assert f"<#{APPROVERS}>" in all_text(refusal) and "only approvers" in all_text(refusal)
    cannot = pending_refusal(Refusal.CANNOT_CHECK, approver_channel=APPROVERS)
    assert "try again" in all_text(cannot)


@pytest.mark.parametrize("filler", FILLER)
def test_lists_truncate_with_and_n_more(filler: str) -> None:
    reqs = [worst_case(n, filler) for n in range(40)]
    for msg in (
        pending_message(reqs, total=57, permalinks=links(reqs)),
        status_message(reqs, total=57, permalinks=links(reqs)),
    ):
        assert_valid_message(msg)
        assert len(msg["blocks"]) <= MAX_MESSAGE_BLOCKS
        assert len(json.dumps(msg["blocks"])) <= BLOCKS_JSON_BUDGET
        footer = mrkdwn_texts(msg["blocks"][-1])[0]
        assert footer.startswith("…and ") and "more" in footer
        shown = sum(1 for block in msg["blocks"] if block["type"] == "section")
        assert f"…and {57 - shown} more" in footer
        assert_no_ticket(msg, make_request().temp_ticket)


def test_status_message_shows_states_and_cancel_for_pending() -> None:
    reqs = [
        make_request(id="a1", state=RequestState.PENDING),
        make_request(id="b2", state=RequestState.APPROVED, decided_by="W0APPROVER", decided_at=NOW),
        make_request(id="c3", state=RequestState.EXPIRED),
    ]
    msg = status_message(reqs, total=3, permalinks={"a1": "https://x.slack.com/p1"})
    assert_valid_message(msg)
    text = all_text(msg)
    assert "waiting for an approver" in text and "approved" in text and "expired" in text
    assert [(x["action_id"], x["value"]) for x in buttons(msg)] == [(ACTION_CANCEL, "a1")]
    assert "decided by <@W0APPROVER>" in text
    empty = status_message([], total=0, permalinks={})
    assert "haven't requested" in all_text(empty)


@PROPERTY
@given(reqs=request_lists, total=st.integers(0, 10_000))
def test_lists_always_valid(reqs: list[ProvisioningRequest], total: int) -> None:
    for msg in (
        pending_message(reqs, total=total, permalinks=links(reqs)),
        status_message(reqs, total=total, permalinks={}),
    ):
        assert_valid_message(msg)
        assert len(json.dumps(msg["blocks"])) <= BLOCKS_JSON_BUDGET
        assert_untrusted_only_in_plain_text(msg)
        for req in reqs:
            assert_no_ticket(msg, req.temp_ticket)


# --- the Home tab --------------------------------------------------------------------------------


def test_home_for_a_requester() -> None:
    mine = [make_request(id="a1"), make_request(id="b2", state=RequestState.DENIED)]
    view = home_view(viewer_id="U0REQ", mine=mine, mine_total=2, waiting=None, permalinks={})
    assert_valid_home_view(view)
    text = all_text(view)
    assert "My requests" in text and "Waiting for approval" not in text
    assert [(x["action_id"], x["value"]) for x in request_buttons(view)] == [(ACTION_CANCEL, "a1")]


def test_home_for_an_approver_uses_the_cards_actions() -> None:
    waiting = [make_request(id="a1", requester_id="U0OTHER"), make_request(id="b2")]
    view = home_view(
        viewer_id="U0REQ",
        mine=[waiting[1]],
        mine_total=1,
        waiting=waiting,
        waiting_total=2,
        permalinks=links(waiting),
    )
    assert_valid_home_view(view)
    assert "Waiting for approval (2)" in all_text(view)
    decide = [
        (x["action_id"], x["value"])
        for x in request_buttons(view)
        if x["action_id"] != ACTION_CANCEL
    ]
    # Their own request gets no Approve/Deny: the server would refuse it anyway.
    assert decide == [(ACTION_APPROVE, "a1"), (ACTION_APPROVE_WITH_NOTE, "a1"), (ACTION_DENY, "a1")]
    assert "your own request" in all_text(view)


def test_home_offers_an_incomplete_request_its_retry_or_close() -> None:
    waiting = [make_request(id="a1", requester_id="U0OTHER", state=RequestState.INCOMPLETE)]
    view = home_view(
        viewer_id="U0REQ",
        mine=[],
        mine_total=0,
        waiting=waiting,
        waiting_total=1,
        permalinks=links(waiting),
    )
    assert_valid_home_view(view)
    assert [(x["action_id"], x["value"]) for x in request_buttons(view)] == [
        (ACTION_RETRY, "a1"),
        (ACTION_CLOSE, "a1"),
    ]


@pytest.mark.parametrize(
    "kind",
    [Refusal.GUEST, Refusal.EXTERNAL, Refusal.BOT, Refusal.DEACTIVATED, Refusal.UNSAFE_CHANNEL],
)
def test_pending_and_home_tell_a_member_who_may_not_decide_why(kind: Refusal) -> None:
    refusal = pending_refusal(kind, approver_channel=APPROVERS)
    assert_valid_message(refusal)
    assert_fallback_inert(refusal["text"])
    expected = approval_refusal(kind)["text"].split(" ")[0]
    assert all_text(refusal).startswith(expected)
    view = home_view(
        viewer_id="U0MEMBER",
        mine=[],
        mine_total=0,
        waiting=None,
        permalinks={},
        waiting_refusal=kind,
    )
    assert_valid_home_view(view)
    assert "Waiting for approval" not in all_text(view)
    assert "see or decide the requests waiting for approval" in all_text(view)
    # Anyone else (not in the channel) is not told about approvals at all.
    for not_in_channel in (Refusal.NOT_APPROVER, None):
        plain = home_view(
            viewer_id="U0X",
            mine=[],
            mine_total=0,
            waiting=None,
            permalinks={},
            waiting_refusal=not_in_channel,
        )
        assert "approv" not in all_text(plain).lower()


def test_home_notice_and_cannot_check() -> None:
    notice = approval_refusal(Refusal.NOT_APPROVER)
    view = home_view(
        viewer_id="U0REQ",
        mine=[],
        mine_total=0,
        waiting=None,
        waiting_refusal=Refusal.CANNOT_CHECK,
        permalinks={},
        notice=notice,
    )
    assert_valid_home_view(view)
    assert view["blocks"][1] == notice["blocks"][0]
    assert "couldn't check whether you are an approver" in all_text(view)
    assert "haven't requested" in all_text(view)


@pytest.mark.parametrize("filler", FILLER)
def test_home_worst_case_fits_and_keeps_room_for_both_lists(filler: str) -> None:
    mine = [worst_case(n, filler, RequestState.PENDING) for n in range(HOME_MINE_LIMIT)]
    waiting = [worst_case(100 + n, filler) for n in range(HOME_WAITING_LIMIT)]
    view = home_view(
        viewer_id="U00000001",
        mine=mine,
        mine_total=300,
        waiting=waiting,
        waiting_total=900,
        permalinks=links(mine + waiting),
        notice=refusal_message("Creating the account failed:", detail=filler),
    )
    assert_valid_home_view(view)
    assert len(view["blocks"]) <= MAX_VIEW_BLOCKS
    assert len(json.dumps(view["blocks"])) <= BLOCKS_JSON_BUDGET
    actions = {x["action_id"] for x in request_buttons(view)}
    assert {ACTION_CANCEL, ACTION_APPROVE, ACTION_DENY} <= actions
    more = [t for t in mrkdwn_texts(view) if t.startswith("…and ")]
    assert len(more) == 2


@PROPERTY
@given(
    mine=request_lists,
    waiting=st.one_of(st.none(), request_lists),
    total=st.integers(0, 10_000),
    viewer=st.sampled_from(["U0REQ", "W0APPROVER"]),
)
def test_home_always_valid(
    mine: list[ProvisioningRequest],
    waiting: list[ProvisioningRequest] | None,
    total: int,
    viewer: str,
) -> None:
    # The Home tab lists the same request in both lists when it is the approver's own.
    view = home_view(
        viewer_id=viewer,
        mine=mine,
        mine_total=total,
        waiting=waiting,
        waiting_total=total,
        permalinks=links(mine + (waiting or [])),
    )
    assert_valid_home_view(view)
    assert len(json.dumps(view["blocks"])) <= BLOCKS_JSON_BUDGET
    assert_untrusted_only_in_plain_text(view)
    for req in mine + (waiting or []):
        assert_no_ticket(view, req.temp_ticket)


# -- lock and unlock, and the bot's own question about a deactivated member ----------------------


@pytest.mark.parametrize("state", list(RequestState))
@pytest.mark.parametrize("kind", [RequestKind.LOCK, RequestKind.UNLOCK])
@pytest.mark.parametrize("requester", ["UREQUESTER", BOT_REQUESTER])
def test_lock_cards_are_valid_in_every_state(
    state: RequestState, kind: RequestKind, requester: str
) -> None:
    req = make_request(
        state=state,
        kind=kind,
        requester_id=requester,
        subject_id="USUBJECT1",
        full_name="Ana <!channel> Lima",
        connect_guid="6f1c2d3e-4a5b-4c6d-8e7f-001122334455",
        decided_by="UAPPROVER1",
        last_error="Connect refused" if state is RequestState.INCOMPLETE else None,
        steps=steps_for(kind, None),
    )
    card = approval_card(req, connect_url="https://connect.example.com")
    assert_valid_message(card)
    text = json.dumps(card)
    assert "<@bot:" not in text
    assert all("<!channel>" not in mrkdwn for mrkdwn in mrkdwn_texts(card))
    labels = [
        e["text"]["text"]
        for b in card["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
    ]
    if state is RequestState.PENDING:
        # A lock sets no role: Approve decides at once, and a note has its own button.
        plain_labels = ["Approve", "Approve with note", "Deny"]
        assert labels == (["Lock", "Keep"] if requester == BOT_REQUESTER else plain_labels)
    if requester == BOT_REQUESTER and state is RequestState.PENDING:
        assert "was deactivated in Slack; their Connect account is still active" in text
