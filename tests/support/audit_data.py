"""Audit page test data: one request per state, with the awkward values the page must handle
(formula-looking text, markup, LIKE wildcards, accents), and the header that names a visitor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.store.sql_store import SqlRequestStore
from bot.workflow.models import NewRequest, Person, Step, StepAction, StepStatus
from bot.workflow.states import RequestState
from tests.support.bot_under_test import APPROVER, APPROVER_2, REQUESTER

CREDENTIALS = "RStudio-Connect-Credentials"
AUDITOR = "auditor"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
S = RequestState


def audit_clock() -> datetime:
    """The clock of a bot serving the seeded history: a day after it, so the bot's own timers
    never expire or remind the pending requests while a test (or its seeding) runs."""
    return T0 + timedelta(days=1)


def credentials(user: str | None, groups: list[str] | None = None) -> dict[str, str]:
    value: dict[str, Any] = {"user": user}
    if groups is not None:
        value["groups"] = groups
    return {CREDENTIALS: json.dumps(value)}


def header(value: object) -> str:
    """What Starlette hands over: the header's bytes decoded as latin-1."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8").decode("latin-1")


def ticket(username: str) -> str:
    # Distinctive, so a leak anywhere in a page is unmistakable.
    return f"TICKET+{username}/never-shown=="


async def file_request(
    store: SqlRequestStore,
    request_id: str,
    username: str,
    full_name: str,
    *,
    minutes: int,
    requester: str = REQUESTER,
    justification: str = "needs the dashboards",
    email: str | None = None,
    role: str | None = None,
) -> None:
    await store.create(
        NewRequest(
            request_id=request_id,
            requester_id=requester,
            person=Person(
                username,
                full_name,
                f"{username}@example.com" if email is None else email,
                ticket(username),
            ),
            justification=justification,
            created_at=T0 + timedelta(minutes=minutes),
            role_asked=role,
        )
    )


async def decide(
    store: SqlRequestStore, request_id: str, to: RequestState, *, minutes: int, **changes: Any
) -> None:
    now = T0 + timedelta(minutes=minutes)
    if to in (S.APPROVED, S.ALREADY_EXISTS):
        moved = await store.transition(
            request_id, from_states=[S.PENDING], to_state=S.PROVISIONING, now=now
        )
        assert moved is not None
        source = S.PROVISIONING
    else:
        source = S.PENDING
    moved = await store.transition(
        request_id, from_states=[source], to_state=to, now=now, changes=changes
    )
    assert moved is not None


async def seed(store: SqlRequestStore) -> None:
    """Seven requests, one per state, newest last. Realistic enough for the README's screenshot,
    awkward where it matters: text starting with `+` and `@` (spreadsheet formulas), markup and
    `&` (HTML escaping), accents, and an underscore (a LIKE wildcard) in a username."""
    await file_request(
        store,
        "r1-approved",
        "amara",
        "Amara Okafor",
        minutes=0,
        justification="Joins the data team on Monday; needs the sales dashboards.",
        role="publisher",
    )
    # Asked for Publisher; the approver granted Viewer, which Connect had given already.
    await decide(
        store,
        "r1-approved",
        S.APPROVED,
        minutes=5,
        decided_by=APPROVER,
        decided_at=T0 + timedelta(minutes=5),
        connect_guid="6f1c2d3e-4a5b-4c6d-8e7f-001122334455",
        temp_ticket="",
        role_granted="viewer",
        role_before="viewer",
        steps=(
            Step(StepAction.CREATE_ACCOUNT, StepStatus.DONE, done_at=T0 + timedelta(minutes=5)),
            Step(
                StepAction.SET_ROLE,
                StepStatus.DONE,
                note="Connect had given that role already",
                done_at=T0 + timedelta(minutes=5),
            ),
        ),
    )
    await file_request(
        store,
        "r2-denied",
        "boris",
        "Boris Petrov",
        minutes=10,
        justification="+1 from his manager, wants the finance reports",
    )
    await decide(
        store,
        "r2-denied",
        S.DENIED,
        minutes=12,
        decided_by=APPROVER_2,
        decided_at=T0 + timedelta(minutes=12),
        deny_reason="@boris finance reports need the controller's sign-off first",
        temp_ticket="",
    )
    await file_request(
        store,
        "r3-pending",
        "chen_li",
        "Chen Li",
        minutes=20,
        requester="UOTHER42",
        justification="Moving the churn model from RStudio Desktop to a scheduled report.",
    )
    await file_request(
        store,
        "r4-exists",
        "dana",
        "Dana Scully",
        minutes=30,
        justification="Needs <b>read</b> access to reports & dashboards",
    )
    await decide(
        store,
        "r4-exists",
        S.ALREADY_EXISTS,
        minutes=31,
        decided_by=APPROVER,
        decided_at=T0 + timedelta(minutes=31),
        connect_guid="7a7a7a7a-1b1b-4c2c-8d3d-4e4e4e4e4e4e",
    )
    await file_request(
        store,
        "r5-expired",
        "emil",
        "Emil Zoë Ångström",
        minutes=40,
        justification="Shiny app for the lab inventory",
    )
    await decide(store, "r5-expired", S.EXPIRED, minutes=50)
    await file_request(
        store,
        "r6-cancelled",
        "fatou",
        "Fatou Diallo",
        minutes=60,
        justification="Quarterly board pack",
    )
    await decide(
        store,
        "r6-cancelled",
        S.CANCELLED,
        minutes=61,
        decided_by=REQUESTER,
        decided_at=T0 + timedelta(minutes=61),
    )
    await file_request(
        store,
        "r7-provisioning",
        "gus",
        "Gus Grey",
        minutes=70,
        justification="Publishing the forecasting API",
    )
    await store.transition(
        "r7-provisioning", from_states=[S.PENDING], to_state=S.PROVISIONING, now=T0
    )


NEWEST_FIRST = [
    "r7-provisioning",
    "r6-cancelled",
    "r5-expired",
    "r4-exists",
    "r3-pending",
    "r2-denied",
    "r1-approved",
]


HOSTILE = "r8-hostile"


async def file_hostile(store: SqlRequestStore) -> None:
    """The newest request, made of what attackers type: a spreadsheet formula, markup, and LIKE
    wildcards in the searchable fields."""
    await file_request(
        store,
        HOSTILE,
        "rate_50",
        "Rate 50% Review",
        minutes=80,
        email="-2+3@example.com",
        justification='=HYPERLINK("http://evil.example","click")',
    )
    await decide(
        store,
        HOSTILE,
        S.DENIED,
        minutes=81,
        decided_by=APPROVER,
        decided_at=T0 + timedelta(minutes=81),
        deny_reason="<script>alert('x')</script> & more",
    )
