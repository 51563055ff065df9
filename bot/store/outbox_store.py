"""The outbox: messages the bot owes people, written with the state change that owes them and
delivered by a worker under a lease (by the database's clock), so replicas share the work without
sending twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.database import for_reads
from bot.store.tables import database_now, outbox
from bot.workflow.models import OutboxItem, OutboxKind, OutboxMessage

_MAX_ERROR_CHARS = 4000


# Updates of the approval card: a request of a batch shares its card with the others of its
# part, so these go to the queue of the request that holds the card (after its post, in order,
# where consecutive ones are merged into one chat.update).
CARD_KINDS = frozenset({OutboxKind.UPDATE_CARD})


async def insert_outbox(
    conn: AsyncConnection,
    request_id: str,
    items: Sequence[OutboxItem],
    now: datetime,
    *,
    card_holder: str | None = None,
) -> None:
    """Owe `items` for `request_id`; card messages go to `card_holder`'s queue when the card is
    another request's (a batch)."""
    if not items:
        return
    # One row at a time keeps ids in the order given, which is the delivery order.
    for item in items:
        kind = OutboxKind(item.kind)
        await conn.execute(
            sa.insert(outbox).values(
                request_id=card_holder if card_holder and kind in CARD_KINDS else request_id,
                kind=kind.value,
                payload=dict(item.payload),
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )


class SqlOutbox:
    """The outbox half of `bot.workflow.ports.RequestStore`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Same pool; on SQLite, reads start deferred so they never queue behind writers.
        self._reader = for_reads(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _db_now(self, plus_seconds: float = 0.0) -> sa.ColumnElement[datetime]:
        return database_now(self._engine.dialect.name, plus_seconds)

    async def claim_outbox(
        self, *, owner: str, now: datetime, lease_seconds: float, limit: int = 20
    ) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        earlier = outbox.alias("earlier")
        # Due by the caller's clock (the one that scheduled the retry); the lease by the
        # database's, like every lease.
        claimable = sa.and_(
            outbox.c.delivered_at.is_(None),
            outbox.c.failed_at.is_(None),
            sa.or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
            sa.or_(
                outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at <= self._db_now()
            ),
        )
        # Messages for one request go out strictly in id order: the card before the
        # confirmation that links to it. An earlier message still in flight (leased) blocks too.
        no_earlier_undelivered = ~sa.exists().where(
            earlier.c.request_id == outbox.c.request_id,
            earlier.c.id < outbox.c.id,
            earlier.c.delivered_at.is_(None),
            earlier.c.failed_at.is_(None),
        )
        candidates = (
            sa.select(outbox.c.id)
            .where(claimable, no_earlier_undelivered)
            .order_by(outbox.c.id)
            .limit(limit)
            # PostgreSQL: let concurrent claimers pass over rows another one is taking instead
            # of queueing on them. SQLite ignores it (BEGIN IMMEDIATE already serialises).
            .with_for_update(skip_locked=True, of=outbox)
        )
        async with self._engine.begin() as conn:
            ids = list((await conn.execute(candidates)).scalars())
            if not ids:
                return []
            # The claim itself is conditional, so even without SKIP LOCKED two workers can
            # never both take a row: the second UPDATE finds the lease already taken.
            result = await conn.execute(
                sa.update(outbox)
                .where(outbox.c.id.in_(ids), claimable)
                .values(
                    lease_owner=owner,
                    lease_expires_at=self._db_now(lease_seconds),
                    attempts=outbox.c.attempts + 1,
                )
                .returning(*outbox.c)
            )
            rows = result.all()
        return sorted((_to_message(row) for row in rows), key=lambda message: message.id)

    async def renew_outbox_lease(
        self, message_id: int, *, owner: str, lease_seconds: float
    ) -> bool:
        statement = (
            sa.update(outbox)
            .where(
                outbox.c.id == message_id,
                outbox.c.lease_owner == owner,
                outbox.c.delivered_at.is_(None),
                outbox.c.failed_at.is_(None),
            )
            .values(lease_expires_at=self._db_now(lease_seconds))
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def outbox_delivered(self, message_id: int, *, now: datetime) -> None:
        # A payload is what delivery needs (a confirmation's is the requester's response_url,
        # a credential for their conversation): once delivered or given up, it is forgotten.
        await self._update_message(
            message_id, delivered_at=now, lease_owner=None, lease_expires_at=None, payload={}
        )

    async def absorb_later(self, message_id: int, *, now: datetime) -> int:
        """Mark delivered the later undelivered messages of the same request and kind as
        `message_id`: its delivery renders the state they were written for (they were committed
        with it), so one Slack call answers them all. Returns how many."""
        this = sa.select(outbox.c.request_id, outbox.c.kind).where(outbox.c.id == message_id)
        async with self._engine.begin() as conn:
            found = (await conn.execute(this)).first()
            if found is None:
                return 0
            result = await conn.execute(
                sa.update(outbox)
                .where(
                    outbox.c.request_id == found.request_id,
                    outbox.c.kind == found.kind,
                    outbox.c.id > message_id,
                    outbox.c.delivered_at.is_(None),
                    outbox.c.failed_at.is_(None),
                    # Never one another worker holds (the queue's order keeps them unheld).
                    sa.or_(
                        outbox.c.lease_expires_at.is_(None),
                        outbox.c.lease_expires_at <= self._db_now(),
                    ),
                )
                .values(delivered_at=now, payload={}, last_error=f"merged into {message_id}")
            )
            return int(result.rowcount or 0)

    async def outbox_retry_later(
        self, message_id: int, *, next_attempt_at: datetime, error: str
    ) -> None:
        await self._update_message(
            message_id,
            next_attempt_at=next_attempt_at,
            last_error=_clip(error),
            lease_owner=None,
            lease_expires_at=None,
        )

    async def outbox_give_up(self, message_id: int, *, now: datetime, error: str) -> None:
        await self._update_message(
            message_id,
            failed_at=now,
            last_error=_clip(error),
            lease_owner=None,
            lease_expires_at=None,
            payload={},
        )

    async def outbox_pending_count(self) -> int:
        async with self._reader.connect() as conn:
            result = await conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.delivered_at.is_(None), outbox.c.failed_at.is_(None))
            )
            return int(result.scalar_one())

    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        """How many messages wait (neither delivered nor given up) and when the oldest was
        written; one aggregate over the undelivered rows (the partial index keeps them few)."""
        async with self._reader.connect() as conn:
            result = await conn.execute(
                sa.select(sa.func.count(), sa.func.min(outbox.c.created_at))
                .select_from(outbox)
                .where(outbox.c.delivered_at.is_(None), outbox.c.failed_at.is_(None))
            )
            count, oldest = result.one()
        # min() keeps the column's type, so the oldest time comes back as an aware UTC datetime.
        return int(count), oldest

    async def _update_message(self, message_id: int, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(outbox).where(outbox.c.id == message_id).values(values))


def _clip(error: str) -> str:
    return error if len(error) <= _MAX_ERROR_CHARS else error[: _MAX_ERROR_CHARS - 1] + "…"


def _to_message(row: Row[Any]) -> OutboxMessage:
    m = row._mapping
    return OutboxMessage(
        id=int(m["id"]),
        request_id=m["request_id"],
        kind=OutboxKind(m["kind"]),
        payload=dict(m["payload"] or {}),
        attempts=int(m["attempts"]),
        created_at=m["created_at"],
    )
