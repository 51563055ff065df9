"""Read-only queries behind the audit page: every provisioning request, filtered and paged, and
the aggregates of its insights view (counts per week and state, time to decision, what waits).

Columns are selected by name, never `select(table)`: the ticket must not be read at all (a page
cannot leak what it never loaded), and columns other migrations add later are not this page's
business until someone chooses to show them.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.database import for_reads
from bot.store.tables import approvals, provisioning_requests

_requests = provisioning_requests

AUDIT_COLUMNS = (
    _requests.c.id,
    _requests.c.state,
    _requests.c.requester_id,
    _requests.c.username,
    _requests.c.full_name,
    _requests.c.email,
    _requests.c.justification,
    _requests.c.created_at,
    _requests.c.decided_by,
    _requests.c.decided_at,
    _requests.c.deny_reason,
    _requests.c.connect_guid,
    _requests.c.kind,
    _requests.c.role_asked,
    _requests.c.role_granted,
    _requests.c.role_before,
    _requests.c.steps,
    _requests.c.group_name,
    _requests.c.groups,
)
# The columns the search box looks in.
SEARCHED_COLUMNS = (
    _requests.c.username,
    _requests.c.full_name,
    _requests.c.email,
    _requests.c.requester_id,
    _requests.c.group_name,
)
LIKE_ESCAPE = "\\"
# Newest first; the id breaks ties so paging is stable when two requests share a timestamp.
_NEWEST_FIRST = (_requests.c.created_at.desc(), _requests.c.id.desc())


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One request as the audit page shows it. There is deliberately no ticket field."""

    id: str
    state: str  # a plain string: a state added by a newer release must still be listed
    requester_id: str
    username: str
    full_name: str
    email: str
    justification: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    deny_reason: str | None
    connect_guid: str | None
    kind: str = "new_account"  # a plain string, as the state: a kind added later is listed too
    role_asked: str | None = None  # None: Connect's default role (no choice was offered)
    role_granted: str | None = None
    role_before: str | None = None
    # Each step as recorded (action, status, error, note, done_at), in order.
    steps: tuple[AuditStep, ...] = ()
    # A group request: the directory group's name (it has no person).
    group_name: str | None = None
    # The Connect groups an account request adds the account to.
    groups: tuple[AuditGroup, ...] = ()
    # Every approval given, oldest first, of whichever role and round (a request that needs
    # several approvals, or one approved again after Connect refused it).
    approvals: tuple[AuditApproval, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditApproval:
    approver_id: str
    role: str | None  # None: Connect's default role
    note: str | None
    approved_at: datetime
    round: int = 0


@dataclass(frozen=True, slots=True)
class AuditGroup:
    guid: str
    name: str


def _groups(stored: Any) -> tuple[AuditGroup, ...]:
    if not isinstance(stored, list):
        return ()
    return tuple(
        AuditGroup(guid=str(item.get("guid") or ""), name=str(item.get("name") or ""))
        for item in stored
        if isinstance(item, dict)
    )


@dataclass(frozen=True, slots=True)
class AuditStep:
    action: str
    status: str
    error: str | None = None
    note: str | None = None
    done_at: str | None = None  # ISO 8601, as recorded


def _steps(stored: Any) -> tuple[AuditStep, ...]:
    """The recorded steps, read leniently: the page lists whatever a newer release wrote."""
    if not isinstance(stored, list):
        return ()
    steps = []
    for item in stored:
        if not isinstance(item, dict):
            continue
        steps.append(
            AuditStep(
                action=str(item.get("action") or ""),
                status=str(item.get("status") or ""),
                error=_text_or_none(item.get("error")),
                note=_text_or_none(item.get("note")),
                done_at=_text_or_none(item.get("done_at")),
            )
        )
    return tuple(steps)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    states: tuple[str, ...] = ()  # empty: every state
    # substring of username, full name, email, requester id or group name; "" matches all
    search: str = ""


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    total: int  # matching requests on every page
    page: int  # 1-based
    per_page: int
    filter: AuditFilter = field(default_factory=AuditFilter)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards in `text` escaped, so a search for `50%` or `a_b` means
    exactly that (used with `escape=LIKE_ESCAPE`)."""
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def _conditions(audit_filter: AuditFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if audit_filter.states:
        conditions.append(_requests.c.state.in_(list(audit_filter.states)))
    if audit_filter.search:
        pattern = like_pattern(audit_filter.search)
        # ilike: case-insensitive on both backends (ILIKE on PostgreSQL, lower() LIKE lower()
        # on SQLite); the pattern is a bound parameter, never part of the SQL text.
        conditions.append(
            sa.or_(*(column.ilike(pattern, escape=LIKE_ESCAPE) for column in SEARCHED_COLUMNS))
        )
    return conditions


async def list_requests(
    engine: AsyncEngine, audit_filter: AuditFilter, *, page: int, per_page: int
) -> AuditPage:
    """One page of matching requests, newest first, and how many match in all."""
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page start at 1")
    conditions = _conditions(audit_filter)
    count = sa.select(sa.func.count()).select_from(_requests).where(*conditions)
    rows = (
        sa.select(*AUDIT_COLUMNS)
        .where(*conditions)
        .order_by(*_NEWEST_FIRST)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    # Deferred on SQLite: an auditor's read never queues behind the bot's writers.
    async with for_reads(engine).connect() as conn:
        total = int((await conn.execute(count)).scalar_one())
        records = await _with_approvals(conn, [_to_record(row) for row in await conn.execute(rows)])
    return AuditPage(
        records=records, total=total, page=page, per_page=per_page, filter=audit_filter
    )


async def iter_requests(
    engine: AsyncEngine, audit_filter: AuditFilter, *, batch_size: int = 500
) -> AsyncIterator[AuditRecord]:
    """Every matching request, newest first, read in batches (for the CSV export).

    Batches continue after the last row seen (keyset), not at an offset, so requests filed while
    the export runs neither shift rows into a second batch nor push any out.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    conditions = _conditions(audit_filter)
    after: tuple[datetime, str] | None = None
    reader = for_reads(engine)
    while True:
        statement = sa.select(*AUDIT_COLUMNS).where(*conditions)
        if after is not None:
            created_at, request_id = after
            statement = statement.where(
                sa.or_(
                    _requests.c.created_at < created_at,
                    sa.and_(_requests.c.created_at == created_at, _requests.c.id < request_id),
                )
            )
        statement = statement.order_by(*_NEWEST_FIRST).limit(batch_size)
        # One short read per batch: no connection is held while the client downloads.
        async with reader.connect() as conn:
            batch = await _with_approvals(
                conn, [_to_record(row) for row in await conn.execute(statement)]
            )
        for record in batch:
            yield record
        if len(batch) < batch_size:
            return
        last = batch[-1]
        after = (last.created_at, last.id)


async def _with_approvals(conn: AsyncConnection, records: list[AuditRecord]) -> list[AuditRecord]:
    """The records with their approvals, read in one query for all of them."""
    if not records:
        return records
    given: dict[str, list[AuditApproval]] = {record.id: [] for record in records}
    result = await conn.execute(
        sa.select(
            approvals.c.request_id,
            approvals.c.approver_id,
            approvals.c.role,
            approvals.c.note,
            approvals.c.created_at,
            approvals.c.round,
        )
        .where(approvals.c.request_id.in_(list(given)))
        .order_by(approvals.c.created_at, approvals.c.id)
    )
    for row in result:
        given[row.request_id].append(
            AuditApproval(
                approver_id=row.approver_id,
                role=row.role or None,
                note=row.note,
                approved_at=row.created_at,
                round=row.round,
            )
        )
    return [dataclasses.replace(record, approvals=tuple(given[record.id])) for record in records]


def _to_record(row: Row[*tuple[Any, ...]]) -> AuditRecord:
    m = row._mapping
    return AuditRecord(
        id=m["id"],
        state=m["state"],
        requester_id=m["requester_id"],
        username=m["username"],
        full_name=m["full_name"],
        email=m["email"],
        justification=m["justification"],
        created_at=m["created_at"],
        decided_by=m["decided_by"],
        decided_at=m["decided_at"],
        deny_reason=m["deny_reason"],
        connect_guid=m["connect_guid"],
        kind=m["kind"] or "new_account",
        role_asked=m["role_asked"],
        role_granted=m["role_granted"],
        role_before=m["role_before"],
        steps=_steps(m["steps"]),
        group_name=m["group_name"],
        groups=_groups(m["groups"]),
    )


# -- Insights: aggregates over a bounded window of weeks -----------------------------------------

# The longest window the aggregate query takes (the page offers fewer): its result has at most
# one row per week and state, so it stays small however long the history is.
MAX_INSIGHT_WEEKS = 53
WAITING_STATE = "pending"
# Requests no approver decided although decided_at may be set: a pending one had its approval
# undone by a failed provisioning attempt (decided_at is cleared then, but a row written by an
# older release may keep it), and a cancelled one was withdrawn by its requester.
_NOT_DECIDED_BY_APPROVER = ("pending", "cancelled")
PERCENTILES = (0.5, 0.9)


@dataclass(frozen=True, slots=True)
class WeekStateCount:
    week: int  # index into RequestInsights.week_starts: 0 is the oldest week
    state: str  # as stored: a state added by a newer release is counted too
    count: int


@dataclass(frozen=True, slots=True)
class DecisionTimes:
    """How long approvers took, over the requests filed in the window that they decided."""

    decided: int
    # Linear interpolation between the two nearest ranks (PostgreSQL's percentile_cont), in
    # seconds; None when nothing was decided.
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True, slots=True)
class OldestWaiting:
    id: str
    username: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RequestInsights:
    week_starts: tuple[datetime, ...]  # each week's first instant, oldest first
    counts: tuple[WeekStateCount, ...]  # only the (week, state) pairs that have requests
    decision_times: DecisionTimes
    waiting: int  # pending now, whenever filed
    oldest_waiting: OldestWaiting | None


def _seconds_between(
    dialect: str, start: sa.ColumnElement[Any], end: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.extract("epoch", end) - sa.extract("epoch", start)
    # SQLite keeps datetimes as UTC text; julianday reads it with sub-second precision.
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def interpolation_ranks(count: int, fraction: float) -> tuple[int, float]:
    """The 0-based rank below the percentile and how far towards the next rank it lies."""
    position = (count - 1) * fraction
    below = math.floor(position)
    return below, position - below


async def request_insights(engine: AsyncEngine, week_starts: Sequence[datetime]) -> RequestInsights:
    """Requests filed since week_starts[0], counted per week (a request belongs to the last week
    that starts at or before its filing) and state; how long the decided ones took; and the
    requests pending now. Every figure is computed by the database; what comes back is bounded by
    the number of weeks, states and percentiles, never by the number of requests."""
    starts = tuple(week_starts)
    if not 1 <= len(starts) <= MAX_INSIGHT_WEEKS:
        raise ValueError(f"give 1 to {MAX_INSIGHT_WEEKS} week starts")
    if any(later <= earlier for earlier, later in itertools.pairwise(starts)):
        raise ValueError("week starts must increase")
    created = _requests.c.created_at
    in_window = created >= starts[0]
    # The week is found by comparisons with the boundaries, which mean the same on every
    # database (no dialect's date functions, no time zone settings).
    week = sa.case(
        *((created >= start, index) for index, start in reversed(list(enumerate(starts)))),
        else_=-1,
    ).label("week")
    # Grouped outside a subquery: PostgreSQL would not match a GROUP BY expression whose bound
    # parameters are numbered apart from the same expression in the select list.
    filed = sa.select(week, _requests.c.state).where(in_window).subquery()
    per_week = sa.select(filed.c.week, filed.c.state, sa.func.count().label("n")).group_by(
        filed.c.week, filed.c.state
    )

    decided_conditions = (
        in_window,
        _requests.c.decided_at.is_not(None),
        _requests.c.state.not_in(_NOT_DECIDED_BY_APPROVER),
    )
    seconds = _seconds_between(engine.dialect.name, created, _requests.c.decided_at).label(
        "seconds"
    )
    decided_count = sa.select(sa.func.count()).select_from(_requests).where(*decided_conditions)

    waiting = _requests.c.state == WAITING_STATE
    waiting_count = sa.select(sa.func.count()).select_from(_requests).where(waiting)
    oldest = (
        sa.select(_requests.c.id, _requests.c.username, created)
        .where(waiting)
        .order_by(created, _requests.c.id)
        .limit(1)
    )

    async with for_reads(engine).connect() as conn:
        if engine.dialect.name == "postgresql":
            # One snapshot for every figure: the percentiles' offsets come from the count.
            # (SQLite's deferred read transaction is one snapshot already.)
            await conn.execution_options(isolation_level="REPEATABLE READ")
        counts = tuple(
            WeekStateCount(week=int(row.week), state=str(row.state), count=int(row.n))
            for row in await conn.execute(per_week)
            if row.week is not None and 0 <= int(row.week) < len(starts)
        )
        decided = int((await conn.execute(decided_count)).scalar_one())
        percentiles: list[float | None] = []
        for fraction in PERCENTILES:
            if decided == 0:
                percentiles.append(None)
                continue
            # At most two rows per percentile, whatever the number decided.
            below, towards_next = interpolation_ranks(decided, fraction)
            nearest = (
                sa.select(seconds)
                .where(*decided_conditions)
                .order_by(seconds)
                .limit(2)
                .offset(below)
            )
            values = [_as_float(value) for value in (await conn.execute(nearest)).scalars()]
            if not values:  # cannot happen within one snapshot; never an IndexError
                percentiles.append(None)
                continue
            low = values[0]
            high = values[1] if len(values) > 1 else low
            percentiles.append(low + (high - low) * towards_next)
        waiting_now = int((await conn.execute(waiting_count)).scalar_one())
        oldest_row = (await conn.execute(oldest)).first()
    return RequestInsights(
        week_starts=starts,
        counts=counts,
        decision_times=DecisionTimes(
            decided=decided, median_seconds=percentiles[0], p90_seconds=percentiles[1]
        ),
        waiting=waiting_now,
        oldest_waiting=None
        if oldest_row is None
        else OldestWaiting(
            id=oldest_row.id, username=oldest_row.username, created_at=oldest_row.created_at
        ),
    )


def _as_float(value: Any) -> float:
    # PostgreSQL's extract() is numeric (a Decimal here); SQLite's arithmetic is a float.
    return float(value) if isinstance(value, int | float | Decimal) else float(str(value))
