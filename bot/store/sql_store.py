"""The RequestStore on SQLAlchemy Core, for SQLite (one replica) and PostgreSQL (several).

Every decision that two replicas could race on is made by the database: the partial unique index
decides which of two requests for a username exists, a conditional UPDATE decides which click
wins, and a conditional UPDATE decides which worker delivers a message. Nothing here logs or
formats a ticket, and the engine hides bound parameters from error messages.

Leases (an approval in flight, a message being delivered) are set and compared with the
database's clock, never a replica's own: two replicas whose clocks disagree still agree on
whether a lease has run out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.outbox_store import SqlOutbox, insert_outbox
from bot.store.tables import (
    ACTIVE_GROUP_INDEX,
    ACTIVE_STATE_VALUES,
    ACTIVE_USERNAME_INDEX,
    REQUEST_COLUMNS,
    approvals,
    provisioning_requests,
)
from bot.workflow.models import (
    Approval,
    GroupRef,
    NewRequest,
    OutboxItem,
    OutboxKind,
    ProvisioningRequest,
    RequestKind,
    Step,
    SubjectLink,
    steps_for,
)
from bot.workflow.ports import ApprovalRecorded, DuplicateRequestError
from bot.workflow.states import RequestState

_requests = provisioning_requests
_approvals = approvals
# Set by the store itself; letting `changes` touch them would break its guarantees.
_RESERVED_CHANGE_KEYS = frozenset({"id", "state", "updated_at"})
# A request that keeps finishing and reappearing between our insert and our lookup is absurd;
# bounded anyway so a bug cannot spin forever.
_CREATE_ATTEMPTS = 5


class SqlRequestStore(SqlOutbox):
    """`bot.workflow.ports.RequestStore` backed by an AsyncEngine from `bot.store.database`: the
    requests here, the messages owed for them in `SqlOutbox`."""

    async def ping(self) -> None:
        async with self._reader.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # -- requests ---------------------------------------------------------------------------

    async def create(
        self, new: NewRequest, *, outbox: Sequence[OutboxItem] = ()
    ) -> ProvisioningRequest:
        person = new.person
        _check_ticket(person.temp_ticket)
        values = _new_values(new)
        for _ in range(_CREATE_ATTEMPTS):
            try:
                async with self._engine.begin() as conn:
                    result = await conn.execute(
                        sa.insert(_requests).values(values).returning(*_requests.c)
                    )
                    row = result.one()
                    await insert_outbox(conn, new.request_id, outbox, new.created_at)
                return _to_request(row)
            except IntegrityError as exc:
                if not _is_active_username_violation(exc):
                    raise
            # Loaded after the failed transaction ended: PostgreSQL refuses further statements
            # in an aborted one.
            existing = (
                await self.find_active_group(new.group_name)
                if new.group_name is not None
                else await self.find_active(person.username)
            )
            if existing is not None:
                raise DuplicateRequestError(existing)
            # The blocking request finished in between; the username is free again.
        raise RuntimeError(
            f"could not create request {new.request_id}: the active request for its username "
            "kept changing"
        )

    async def create_batch(
        self, news: Sequence[NewRequest], *, outbox: Mapping[str, Sequence[OutboxItem]]
    ) -> list[ProvisioningRequest]:
        """Insert requests filed together in one transaction (their cards list them all from
        the start), each with its owed messages (`outbox`, by request id). Raises
        DuplicateRequestError naming the first username with an active request already."""
        if not news:
            return []
        try:
            async with self._engine.begin() as conn:
                rows = []
                for new in news:
                    _check_ticket(new.person.temp_ticket)
                    result = await conn.execute(
                        sa.insert(_requests).values(_new_values(new)).returning(*_requests.c)
                    )
                    rows.append(result.one())
                    await insert_outbox(
                        conn, new.request_id, outbox.get(new.request_id, ()), new.created_at
                    )
                return await _many(conn, rows)
        except IntegrityError as exc:
            if not _is_active_username_violation(exc):
                raise
        for new in news:
            existing = await self.find_active(new.person.username)
            if existing is not None:
                raise DuplicateRequestError(existing)
        raise RuntimeError("a batch collided with a request that has finished since: file it again")

    async def list_batch(self, batch_id: str, part: int | None) -> list[ProvisioningRequest]:
        """The requests of one part of a batch (every part: `part` None), in filing order."""
        conditions = [_requests.c.batch_id == batch_id]
        if part is not None:
            conditions.append(_requests.c.batch_part == part)
        statement = (
            sa.select(_requests).where(*conditions).order_by(_requests.c.created_at, _requests.c.id)
        )
        async with self._reader.connect() as conn:
            return await _many(conn, (await conn.execute(statement)).all())

    async def set_batch_card(self, batch_id: str, part: int, channel: str, ts: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(_requests)
                .where(_requests.c.batch_id == batch_id, _requests.c.batch_part == part)
                .values(card_channel=channel, card_ts=ts)
            )

    async def get(self, request_id: str) -> ProvisioningRequest | None:
        async with self._reader.connect() as conn:
            result = await conn.execute(sa.select(_requests).where(_requests.c.id == request_id))
            row = result.first()
            return None if row is None else await _one(conn, row)

    async def find_by_workflow(self, execution_id: str) -> ProvisioningRequest | None:
        async with self._reader.connect() as conn:
            result = await conn.execute(
                sa.select(_requests).where(_requests.c.workflow_execution_id == execution_id)
            )
            row = result.first()
            return None if row is None else await _one(conn, row)

    async def find_active(self, username: str) -> ProvisioningRequest | None:
        async with self._reader.connect() as conn:
            result = await conn.execute(
                sa.select(_requests).where(
                    _requests.c.username == username,
                    _requests.c.state.in_(ACTIVE_STATE_VALUES),
                    _requests.c.kind != RequestKind.NEW_GROUP.value,
                )
            )
            row = result.first()
            return None if row is None else await _one(conn, row)

    async def find_active_group(self, name: str) -> ProvisioningRequest | None:
        async with self._reader.connect() as conn:
            result = await conn.execute(
                sa.select(_requests).where(
                    _requests.c.group_name == name,
                    _requests.c.state.in_(ACTIVE_STATE_VALUES),
                )
            )
            row = result.first()
            return None if row is None else await _one(conn, row)

    async def transition(
        self,
        request_id: str,
        *,
        from_states: Collection[RequestState],
        to_state: RequestState,
        now: datetime,
        changes: Mapping[str, Any] | None = None,
        outbox: Sequence[OutboxItem] = (),
        lease_owner: str | None = None,
        lease_seconds: float | None = None,
        lease_expired: bool = False,
        expect: Mapping[str, Any] | None = None,
    ) -> ProvisioningRequest | None:
        values = _validated_changes(changes)
        if "steps" in values:
            values["steps"] = _step_records(values["steps"])
        if "temp_ticket" in values:
            _check_ticket(values["temp_ticket"])
        if lease_seconds is not None:
            if "lease_expires_at" in values:
                raise ValueError("give lease_seconds or changes['lease_expires_at'], not both")
            values["lease_expires_at"] = self._db_now(lease_seconds)
        values["state"] = RequestState(to_state).value
        values["updated_at"] = now
        sources = [RequestState(state).value for state in from_states]
        if not sources:
            return None

        conditions = [_requests.c.id == request_id, _requests.c.state.in_(sources)]
        if lease_owner is not None:
            conditions.append(_requests.c.lease_owner == lease_owner)
        if lease_expired:
            conditions.append(_requests.c.lease_expires_at < self._db_now())
        for column, value in _validated_changes(expect).items():
            conditions.append(
                _requests.c[column].is_(None) if value is None else _requests.c[column] == value
            )
        # One statement decides the winner: the row count is the answer, so there is no window
        # between checking the state and changing it (PostgreSQL re-checks the WHERE clause
        # against the committed row after waiting on a concurrent update; SQLite serialises).
        statement = sa.update(_requests).where(*conditions).values(values).returning(*_requests.c)
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
            if row is None:
                return None
            owed = list(outbox)
            if RequestState(to_state).is_final and row._mapping["workflow_execution_id"]:
                # A request a Workflow Builder step filed ends that step when it ends, whichever
                # way (decided, expired, cancelled): in the same transaction, never lost.
                owed.append(OutboxItem(OutboxKind.COMPLETE_WORKFLOW))
            await insert_outbox(
                conn, request_id, owed, now, card_holder=row._mapping["card_request_id"]
            )
            return await _one(conn, row)

    async def set_workflow_result(self, request_id: str, result: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(_requests)
                .where(_requests.c.id == request_id)
                .values(workflow_result=result)
            )

    async def record_approval(
        self,
        request_id: str,
        *,
        approver_id: str,
        role: str | None,
        note: str | None,
        now: datetime,
        expect_role: str | None,
        needed: int,
        on_reached: Mapping[str, Any],
        lease_seconds: float,
        outbox: Sequence[OutboxItem] = (),
    ) -> ApprovalRecorded | None:
        values = _validated_changes(on_reached)
        role_key = role or ""
        async with self._engine.begin() as conn:
            # Taking the request's row first queues concurrent approvals of it one behind the
            # other (PostgreSQL's row lock; SQLite's IMMEDIATE transaction already does), so
            # each counts the approvals committed before it and exactly one reaches the count.
            asked = (
                _requests.c.role_asked.is_(None)
                if expect_role is None
                else _requests.c.role_asked == expect_role
            )
            current_round = (
                await conn.execute(
                    sa.update(_requests)
                    .where(
                        _requests.c.id == request_id,
                        _requests.c.state == RequestState.PENDING.value,
                        asked,
                    )
                    .values(updated_at=now)
                    .returning(_requests.c.approval_round)
                )
            ).scalar_one_or_none()
            if current_round is None:
                return None
            insert = _insert_ignoring_duplicates(conn).values(
                request_id=request_id,
                round=current_round,
                approver_id=approver_id,
                role=role_key,
                note=note,
                created_at=now,
            )
            counted = (await conn.execute(insert)).rowcount == 1
            given = (
                await conn.execute(
                    sa.select(sa.func.count(sa.distinct(_approvals.c.approver_id))).where(
                        _approvals.c.request_id == request_id,
                        _approvals.c.round == current_round,
                        _approvals.c.role == role_key,
                    )
                )
            ).scalar_one()
            reached = int(given) >= needed
            if reached:
                values["state"] = RequestState.PROVISIONING.value
                values["updated_at"] = now
                values["lease_expires_at"] = self._db_now(lease_seconds)
                moved = (
                    sa.update(_requests)
                    .where(_requests.c.id == request_id)
                    .values(values)
                    .returning(*_requests.c)
                )
                row = (await conn.execute(moved)).one()
            else:
                row = (
                    await conn.execute(sa.select(_requests).where(_requests.c.id == request_id))
                ).one()
            if counted or reached:
                await insert_outbox(
                    conn, request_id, outbox, now, card_holder=row._mapping["card_request_id"]
                )
            request = await _one(conn, row)
        return ApprovalRecorded(request=request, counted=counted, reached=reached)

    async def set_card(self, request_id: str, channel: str, ts: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(_requests)
                .where(_requests.c.id == request_id)
                .values(card_channel=channel, card_ts=ts)
            )

    async def list_expired_leases(self, now: datetime | None = None) -> list[ProvisioningRequest]:
        expired_before = self._db_now() if now is None else now
        async with self._reader.connect() as conn:
            result = await conn.execute(
                sa.select(_requests)
                .where(
                    _requests.c.state == RequestState.PROVISIONING.value,
                    _requests.c.lease_expires_at < expired_before,
                )
                .order_by(_requests.c.lease_expires_at, _requests.c.id)
            )
            return await _many(conn, result.all())

    async def renew_lease(self, request_id: str, *, owner: str, lease_seconds: float) -> bool:
        # Only a lease that is still live: one that ran out may be being taken over right now,
        # and one its holder let run out on purpose (an unsettled outcome) must stay so.
        statement = (
            sa.update(_requests)
            .where(*self._live_lease(request_id, owner))
            .values(lease_expires_at=self._db_now(lease_seconds))
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def mark_put_sent(
        self, request_id: str, *, owner: str, lease_seconds: float, now: datetime
    ) -> ProvisioningRequest | None:
        statement = (
            sa.update(_requests)
            .where(*self._live_lease(request_id, owner))
            .values(
                put_sent_at=self._db_now(),
                lease_expires_at=self._db_now(lease_seconds),
                updated_at=now,
            )
            .returning(*_requests.c)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
            return None if row is None else await _one(conn, row)

    def _live_lease(self, request_id: str, owner: str) -> list[sa.ColumnElement[bool]]:
        return [
            _requests.c.id == request_id,
            _requests.c.state == RequestState.PROVISIONING.value,
            _requests.c.lease_owner == owner,
            _requests.c.lease_expires_at > self._db_now(),
        ]

    # -- listing and timers -----------------------------------------------------------------

    async def list_requests(
        self,
        *,
        states: Collection[RequestState] | None = None,
        requester_id: str | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        limit: int = 50,
        not_escalated: bool = False,
        subject_id: str | None = None,
    ) -> list[ProvisioningRequest]:
        if limit <= 0:
            return []
        order = (
            (_requests.c.created_at.desc(), _requests.c.id.desc())
            if newest_first
            else (_requests.c.created_at, _requests.c.id)
        )
        conditions = _filters(states, requester_id, created_before)
        if not_escalated:
            conditions.append(_requests.c.escalated_at.is_(None))
        if subject_id is not None:
            conditions.append(_requests.c.subject_id == subject_id)
        statement = sa.select(_requests).where(*conditions).order_by(*order).limit(limit)
        async with self._reader.connect() as conn:
            return await _many(conn, (await conn.execute(statement)).all())

    async def count_requests(
        self,
        *,
        states: Collection[RequestState] | None = None,
        requester_id: str | None = None,
        created_before: datetime | None = None,
    ) -> int:
        statement = (
            sa.select(sa.func.count())
            .select_from(_requests)
            .where(*_filters(states, requester_id, created_before))
        )
        async with self._reader.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def list_reminders_due(
        self, *, due_before: datetime, limit: int = 100
    ) -> list[ProvisioningRequest]:
        if limit <= 0:
            return []
        statement = (
            sa.select(_requests)
            .where(_reminder_due(due_before))
            .order_by(_requests.c.created_at, _requests.c.id)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            return await _many(conn, (await conn.execute(statement)).all())

    async def claim_reminder(
        self,
        request_id: str,
        *,
        now: datetime,
        due_before: datetime,
        outbox: Sequence[OutboxItem] = (),
    ) -> ProvisioningRequest | None:
        # The same one-statement race as `transition`: the reminder's period is claimed by moving
        # last_reminder_at to `now`, after which the WHERE clause no longer matches for anyone.
        # updated_at is left alone: a reminder is not a change to the request.
        statement = (
            sa.update(_requests)
            .where(_requests.c.id == request_id, _reminder_due(due_before))
            .values(last_reminder_at=now)
            .returning(*_requests.c)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
            if row is None:
                return None
            await insert_outbox(
                conn, request_id, outbox, now, card_holder=row._mapping["card_request_id"]
            )
            return await _one(conn, row)


def _insert_ignoring_duplicates(conn: AsyncConnection) -> Any:
    """An INSERT into approvals that does nothing when the approver approved this role already
    (the unique constraint), in the dialect's own words."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(_approvals).on_conflict_do_nothing()
    return sqlite.insert(_approvals).on_conflict_do_nothing()


def _new_values(new: NewRequest) -> dict[str, Any]:
    person = new.person
    return {
        "id": new.request_id,
        "state": RequestState.PENDING.value,
        "requester_id": new.requester_id,
        "username": person.username,
        "full_name": person.full_name,
        "email": person.email,
        "temp_ticket": person.temp_ticket,
        "justification": new.justification,
        "created_at": new.created_at,
        "updated_at": new.created_at,
        "kind": new.kind.value,
        "role_asked": new.role_asked,
        "role_before": new.role_before,
        "connect_guid": new.connect_guid,
        "subject_id": new.subject_id,
        "subject_link": new.subject_link.value if new.subject_link else None,
        "steps": _step_records(steps_for(new.kind, new.role_asked, groups=new.groups)),
        "group_name": new.group_name,
        "groups": [{"guid": group.guid, "name": group.name} for group in new.groups],
        "batch_id": new.batch_id,
        "batch_part": new.batch_part,
        "card_request_id": new.card_request_id,
        "workflow_execution_id": new.workflow_execution_id,
    }


def _filters(
    states: Collection[RequestState] | None,
    requester_id: str | None,
    created_before: datetime | None,
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if states is not None:
        conditions.append(_requests.c.state.in_([RequestState(s).value for s in states]))
    if requester_id is not None:
        conditions.append(_requests.c.requester_id == requester_id)
    if created_before is not None:
        conditions.append(_requests.c.created_at <= created_before)
    return conditions


def _reminder_due(due_before: datetime) -> sa.ColumnElement[bool]:
    """Pending, with a card to reply under, and no reminder since `due_before` (nor, for the
    first one, created since)."""
    return sa.and_(
        _requests.c.state == RequestState.PENDING.value,
        _requests.c.card_ts.is_not(None),
        sa.or_(
            sa.and_(_requests.c.last_reminder_at.is_(None), _requests.c.created_at <= due_before),
            _requests.c.last_reminder_at <= due_before,
        ),
    )


def _validated_changes(changes: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(changes or {})
    unknown = sorted(set(values) - REQUEST_COLUMNS)
    if unknown:
        raise ValueError(f"unknown request columns in changes: {', '.join(unknown)}")
    reserved = sorted(set(values) & _RESERVED_CHANGE_KEYS)
    if reserved:
        raise ValueError(
            f"changes may not set {', '.join(reserved)}: the store sets them (use to_state)"
        )
    return values


def _check_ticket(ticket: object) -> None:
    # A wrongly typed value would make the driver's encoding error quote it.
    if not isinstance(ticket, str):
        raise TypeError(f"temp_ticket must be a str, not {type(ticket).__name__}")


def _is_active_username_violation(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    # PostgreSQL names the index; SQLite names the column.
    return any(
        name in message
        for name in (
            ACTIVE_USERNAME_INDEX,
            ACTIVE_GROUP_INDEX,
            "provisioning_requests.username",
            "provisioning_requests.group_name",
        )
    )


async def _one(conn: AsyncConnection, row: Row[Any]) -> ProvisioningRequest:
    return (await _many(conn, [row]))[0]


async def _many(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[ProvisioningRequest]:
    """The requests of `rows`, each with its approvals (one query for all of them)."""
    if not rows:
        return []
    ids = [row._mapping["id"] for row in rows]
    given: dict[str, list[Approval]] = {request_id: [] for request_id in ids}
    result = await conn.execute(
        sa.select(_approvals)
        .where(_approvals.c.request_id.in_(ids))
        .order_by(_approvals.c.created_at, _approvals.c.id)
    )
    for approval in result:
        given[approval.request_id].append(_to_approval(approval))
    return [_to_request(row, tuple(given[row._mapping["id"]])) for row in rows]


def _to_approval(row: Row[Any]) -> Approval:
    m = row._mapping
    return Approval(
        approver_id=m["approver_id"],
        role=m["role"] or None,
        note=m["note"],
        approved_at=m["created_at"],
        round=m["round"],
    )


def _to_request(row: Row[Any], given: tuple[Approval, ...] = ()) -> ProvisioningRequest:
    m = row._mapping
    return ProvisioningRequest(
        id=m["id"],
        state=RequestState(m["state"]),
        requester_id=m["requester_id"],
        username=m["username"],
        full_name=m["full_name"],
        email=m["email"],
        temp_ticket=m["temp_ticket"],
        justification=m["justification"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        decided_by=m["decided_by"],
        decided_at=m["decided_at"],
        deny_reason=m["deny_reason"],
        connect_guid=m["connect_guid"],
        last_error=m["last_error"],
        card_channel=m["card_channel"],
        card_ts=m["card_ts"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        last_reminder_at=m["last_reminder_at"],
        put_sent_at=m["put_sent_at"],
        unknown_put_at=m["unknown_put_at"],
        outcome_note=m["outcome_note"],
        kind=RequestKind(m["kind"]),
        role_asked=m["role_asked"],
        role_granted=m["role_granted"],
        role_before=m["role_before"],
        raised_by=m["raised_by"],
        raised_from=m["raised_from"],
        closed_by=m["closed_by"],
        subject_id=m["subject_id"],
        subject_link=SubjectLink(m["subject_link"]) if m["subject_link"] else None,
        escalated_at=m["escalated_at"],
        steps=tuple(Step.from_record(record) for record in m["steps"] or ()),
        approvals=given,
        approval_round=m["approval_round"],
        batch_id=m["batch_id"],
        batch_part=m["batch_part"],
        card_request_id=m["card_request_id"],
        workflow_execution_id=m["workflow_execution_id"],
        workflow_result=m["workflow_result"],
        group_name=m["group_name"],
        groups=tuple(
            GroupRef(guid=str(group["guid"]), name=str(group["name"]))
            for group in m["groups"] or ()
        ),
    )


def _step_records(steps: Sequence[Step]) -> list[dict[str, Any]]:
    return [step.to_record() for step in steps]
