"""Read-only queries behind the audit page: every provisioning request, filtered and paged.

Columns are selected by name, never `select(table)`: the ticket must not be read at all (a page
cannot leak what it never loaded), and columns other migrations add later are not this page's
business until someone chooses to show them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.database import for_reads
from bot.store.tables import provisioning_requests

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
        records = [_to_record(row) for row in await conn.execute(rows)]
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
            batch = [_to_record(row) for row in await conn.execute(statement)]
        for record in batch:
            yield record
        if len(batch) < batch_size:
            return
        last = batch[-1]
        after = (last.created_at, last.id)


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
