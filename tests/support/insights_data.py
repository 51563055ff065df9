"""Insights test data: requests whose weekly counts, decision times and waiting queue are known.

The bot's clock stands at NOW (Wednesday of ISO week 2026-W12), so the default twelve weeks are
2026-W01 (from Monday 29 December 2025) to 2026-W12. Ten requests were decided 1 h, 2 h, ... 10 h
after filing: the median is 5.5 h and the 90th percentile 9.1 h (linear interpolation). Requests
filed before the window, a cancelled one (decided_at set by its requester) and an expired one
(never decided) must not move those figures. Two boundaries are exact: a request filed at Monday
00:00 belongs to that week, one filed a second earlier to the week before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.sql_store import SqlRequestStore
from bot.workflow.models import NewRequest, Person
from bot.workflow.states import RequestState
from tests.support.bot_under_test import APPROVER, REQUESTER

S = RequestState
NOW = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)
W01 = datetime(2025, 12, 29, tzinfo=UTC)  # Monday of 2026-W01, the window's first instant


def week(number: int) -> datetime:
    """Monday 00:00 UTC of ISO week `number` of 2026."""
    return W01 + timedelta(weeks=number - 1)


def insights_clock() -> datetime:
    return NOW


@dataclass(frozen=True)
class Filed:
    id: str
    created_at: datetime
    state: RequestState
    decided_after: timedelta | None = None  # None: no decided_at


HOUR = timedelta(hours=1)

REQUESTS: tuple[Filed, ...] = (
    # Before the window: in no bar and no percentile, but the oldest waiting request is one.
    Filed("old-approved", datetime(2025, 12, 1, 9, tzinfo=UTC), S.APPROVED, 100 * HOUR),
    Filed("old-pending", W01 - timedelta(hours=1), S.PENDING),
    # 2026-W01, at its first instant.
    Filed("w01-expired", W01, S.EXPIRED),
    # 2026-W09: the second before W10 starts, and an approval that found the account.
    Filed("w09-approved", week(10) - timedelta(seconds=1), S.APPROVED, 4 * HOUR),
    Filed("w09-exists", week(9) + timedelta(days=1, hours=10), S.ALREADY_EXISTS, 5 * HOUR),
    # 2026-W10.
    Filed("w10-approved-1", week(10), S.APPROVED, 1 * HOUR),
    Filed("w10-approved-2", week(10) + timedelta(days=1, hours=9), S.APPROVED, 2 * HOUR),
    Filed("w10-denied", week(10) + timedelta(days=2, hours=14), S.DENIED, 3 * HOUR),
    # 2026-W11.
    Filed("w11-approved-1", week(11) + timedelta(hours=8), S.APPROVED, 6 * HOUR),
    Filed("w11-denied-1", week(11) + timedelta(days=1, hours=8), S.DENIED, 7 * HOUR),
    Filed("w11-approved-2", week(11) + timedelta(days=2, hours=8), S.APPROVED, 8 * HOUR),
    Filed("w11-incomplete", week(11) + timedelta(days=3, hours=8), S.INCOMPLETE, 9 * HOUR),
    Filed("w11-denied-2", week(11) + timedelta(days=4, hours=8), S.DENIED, 10 * HOUR),
    Filed("w11-cancelled", week(11) + timedelta(days=5), S.CANCELLED, timedelta(minutes=30)),
    Filed("w11-expired", week(11) + timedelta(days=6, hours=23, minutes=59), S.EXPIRED),
    # 2026-W12, the current week: waiting.
    Filed("w12-pending-1", week(12), S.PENDING),
    Filed("w12-pending-2", week(12) + timedelta(days=1, hours=10), S.PENDING),
)

# What the view must show for the default twelve weeks (weeks not listed have no requests).
EXPECTED_WEEKS: dict[str, dict[str, int]] = {
    "2026-W01": {"expired": 1},
    "2026-W09": {"approved": 2},
    "2026-W10": {"approved": 2, "denied": 1},
    "2026-W11": {"approved": 2, "incomplete": 1, "denied": 2, "cancelled": 1, "expired": 1},
    "2026-W12": {"waiting": 2},
}
MEDIAN_SECONDS = 5.5 * 3600
P90_SECONDS = 9.1 * 3600
DECIDED = 10
WAITING = 3
OLDEST_WAITING = "old-pending"
OLDEST_WAITING_SECONDS = (NOW - (W01 - timedelta(hours=1))).total_seconds()


async def file_at(
    store: SqlRequestStore,
    request_id: str,
    created_at: datetime,
    state: RequestState,
    decided_after: timedelta | None = None,
) -> None:
    """A request filed at `created_at` and moved straight to `state` (decided when given)."""
    username = request_id.replace("-", "_")
    await store.create(
        NewRequest(
            request_id=request_id,
            requester_id=REQUESTER,
            person=Person(username, username.title(), f"{username}@example.com", "TICKET"),
            justification="insights sample",
            created_at=created_at,
        )
    )
    if state is S.PENDING:
        return
    changes: dict[str, object] = {"temp_ticket": ""}
    if decided_after is not None:
        changes["decided_at"] = created_at + decided_after
        changes["decided_by"] = REQUESTER if state is S.CANCELLED else APPROVER
    moved = await store.transition(
        request_id, from_states=[S.PENDING], to_state=state, now=created_at, changes=changes
    )
    assert moved is not None


async def seed_insights(store: SqlRequestStore) -> None:
    for filed in REQUESTS:
        await file_at(store, filed.id, filed.created_at, filed.state, filed.decided_after)


async def seed_spread(store: SqlRequestStore, *, now: datetime) -> None:
    """A plausible quarter for the README's screenshot: a few requests a week, mostly approved
    within hours, some denied, and three waiting."""
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    pattern = (
        (S.APPROVED, S.APPROVED, S.DENIED),
        (S.APPROVED, S.ALREADY_EXISTS, S.APPROVED, S.EXPIRED),
        (S.APPROVED, S.APPROVED),
        (S.APPROVED, S.DENIED, S.APPROVED, S.CANCELLED, S.APPROVED),
        (S.APPROVED, S.INCOMPLETE, S.APPROVED),
        (S.APPROVED, S.APPROVED, S.APPROVED, S.DENIED),
    )
    number = 0
    for back in range(11, 0, -1):
        start = monday - timedelta(weeks=back)
        for slot, state in enumerate(pattern[back % len(pattern)]):
            number += 1
            created = start + timedelta(days=slot, hours=9 + number % 7)
            hours = timedelta(hours=1 + (number * 7) % 23, minutes=(number * 13) % 60)
            decided = None if state is S.EXPIRED else hours
            await file_at(store, f"sample-{number:03d}", created, state, decided)
    for slot in range(3):
        number += 1
        await file_at(store, f"sample-{number:03d}", monday + timedelta(hours=slot * 7), S.PENDING)
