"""Hypothesis strategies for the untrusted data the renderers must survive, and the checks that
find where it went.

Generated text is marked: the bot never writes `§` (UNTRUSTED) or `¤` (TICKET_MARK) itself, so
a mark found in a payload shows where untrusted data — or a ticket — went."""

from __future__ import annotations

import json
from datetime import UTC

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bot.workflow.models import (
    Approval,
    DirectoryEntry,
    ProvisioningRequest,
    RequestKind,
    Step,
    StepAction,
    StepStatus,
    SubjectLink,
)
from bot.workflow.roles import ROLES
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_fallback_inert, mrkdwn_texts
from tests.support.samples import GUID

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Marks of untrusted text: the bot never writes `§` or `¤` itself, so finding one shows where
# untrusted data went. `¤` marks tickets, which must never be displayed.
UNTRUSTED = "§"
TICKET_MARK = "¤"
NASTY = ["*x*", "_y_", "~z~", "`c`", "<!channel>", "<!here>", "<@U1>", "&", "&amp;", "<", ">"]
NASTY += ["<https://evil.example|click>", ":smile:", "😀", "👩‍👩‍👧", "\n", "\u202e", "\x00", "é"]


# Generated text never contains the marks, so a mark found in output came from a marked field.
chars = st.characters(blacklist_characters=UNTRUSTED + TICKET_MARK, blacklist_categories=("Cs",))
# Long strings built cheaply by repetition (drawing 3,000 random characters is slow).
long_texts = st.builds(
    lambda seed, n: (seed * n)[:n],
    st.sampled_from(["a", "*x*<!channel>&", "😀", "é\n", "👩‍👩‍👧 "])
    | st.text(chars, min_size=1, max_size=5),
    st.integers(200, 3500),
)


def untrusted(tag: str = "", *, max_parts: int = 8, long: bool = True) -> st.SearchStrategy[str]:
    parts = st.one_of(st.sampled_from(NASTY), st.text(chars, max_size=30))
    if long:
        parts = st.one_of(parts, long_texts)
    body = st.lists(parts, max_size=max_parts).map("".join)
    return body.map(lambda s: f"{UNTRUSTED}{tag}{s}")


def maybe_empty(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), strategy)


tickets = st.one_of(
    st.just(""),
    st.text(chars, max_size=40).map(lambda s: f"{TICKET_MARK}{s}"),
    st.integers(0, 3000).map(lambda n: TICKET_MARK + "t" * n),
    long_texts.map(lambda s: f"{TICKET_MARK}{s}"),
)
guids = st.one_of(st.none(), st.just(GUID), st.uuids().map(str), untrusted("G", long=False))

remote_users = st.builds(
    DirectoryEntry,
    guid=guids,
    username=st.one_of(untrusted("U"), st.just("jdoe")),
    first_name=maybe_empty(untrusted("F")),
    last_name=maybe_empty(untrusted("L", long=False)),
    email=maybe_empty(untrusted("M")),
    user_role=st.one_of(
        st.none(),
        st.sampled_from(["viewer", "publisher", "administrator", ""]),
        untrusted("R", long=False),
    ),
    locked=st.booleans(),
    temp_ticket=tickets,
)


@st.composite
def search_results(draw: st.DrawFn) -> tuple[list[DirectoryEntry], int]:
    # A small pool repeated up to 500 times keeps generation fast while covering the counts.
    pool = draw(st.lists(remote_users, min_size=1, max_size=6))
    count = draw(st.integers(0, 500))
    people = [pool[i % len(pool)] for i in range(count)]
    total = draw(st.one_of(st.just(0), st.integers(0, 100_000)))
    return people, total


slack_ids = st.sampled_from(["U0REQ", "W0APPROVER", "U012ABCDEF"])
times = st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)), st.datetimes())

# Roles come from Connect (the account's) or from Slack (validated): any text may reach a renderer.
roles = st.one_of(st.none(), st.sampled_from(ROLES), untrusted("O", max_parts=2, long=False))

requests = st.builds(
    ProvisioningRequest,
    id=st.one_of(st.uuids().map(str), st.text("abcdef0123456789-", min_size=1, max_size=64)),
    state=st.sampled_from(list(RequestState)),
    requester_id=st.one_of(slack_ids, st.just("not a slack id <!channel>")),
    username=untrusted("U"),
    full_name=maybe_empty(untrusted("F")),
    email=maybe_empty(untrusted("M")),
    temp_ticket=tickets,
    justification=maybe_empty(untrusted("J")),
    created_at=times,
    updated_at=times,
    decided_by=st.one_of(st.none(), slack_ids),
    decided_at=times,
    deny_reason=st.one_of(st.none(), untrusted("R")),
    connect_guid=guids,
    last_error=st.one_of(st.none(), untrusted("E")),
    kind=st.sampled_from(list(RequestKind)),
    role_asked=roles,
    role_granted=roles,
    role_before=roles,
    raised_by=st.one_of(st.none(), slack_ids),
    subject_id=st.one_of(st.none(), slack_ids, st.just("not a slack id <!channel>")),
    subject_link=st.one_of(st.none(), st.sampled_from(list(SubjectLink))),
    raised_from=roles,
    steps=st.lists(
        st.builds(
            Step,
            action=st.sampled_from(list(StepAction)),
            status=st.sampled_from(list(StepStatus)),
            error=st.one_of(st.none(), untrusted("E")),
            note=st.one_of(st.none(), untrusted("E")),
        ),
        max_size=3,
    ).map(tuple),
    approvals=st.lists(
        st.builds(
            Approval,
            approver_id=st.one_of(slack_ids, st.just("not a slack id <!channel>")),
            role=roles,
            note=st.one_of(st.none(), untrusted("N")),
            approved_at=times,
        ),
        max_size=5,
    ).map(tuple),
)


def assert_untrusted_only_in_plain_text(msg: dict) -> None:
    for text in mrkdwn_texts(msg):
        assert UNTRUSTED not in text, f"untrusted text inside mrkdwn: {text!r}"
        for nasty in ("<!channel>", "<!here>", "<@U1>", "evil.example", "*x*"):
            assert nasty not in text
    if "text" in msg:
        assert_fallback_inert(msg["text"])


def assert_no_ticket(payload: dict, ticket: str) -> None:
    dumped = json.dumps(payload, ensure_ascii=False)
    assert TICKET_MARK not in dumped
    if len(ticket) >= 8:
        assert ticket not in dumped
        assert json.dumps(ticket)[1:-1] not in json.dumps(payload)
