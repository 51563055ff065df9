"""Rows as an older schema held them, for migration tests: only the columns every revision up to
0004 has (the store's own insert writes today's columns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_old_requests = sa.table(
    "provisioning_requests",
    *(
        sa.column(name)
        for name in (
            "id",
            "state",
            "requester_id",
            "username",
            "full_name",
            "email",
            "temp_ticket",
            "justification",
            "created_at",
            "updated_at",
            "connect_guid",
        )
    ),
)
_old_outbox = sa.table(
    "outbox",
    sa.column("request_id"),
    sa.column("kind"),
    sa.column("payload", sa.JSON()),
    sa.column("created_at"),
)


async def insert_old_request(
    conn: AsyncConnection,
    request_id: str,
    username: str,
    *,
    state: str = "pending",
    created_at: datetime,
    requester_id: str = "UREQUESTER",
    connect_guid: str | None = None,
    outbox: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> None:
    # SQLite stores the store's datetimes as naive UTC text; PostgreSQL takes aware ones.
    when: Any = created_at
    if conn.dialect.name == "sqlite":
        when = created_at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    await conn.execute(
        _old_requests.insert().values(
            id=request_id,
            state=state,
            requester_id=requester_id,
            username=username,
            full_name="Some One",
            email=f"{username}@example.com",
            temp_ticket="" if state != "pending" else f"tkt-{username}",
            justification="needs it",
            created_at=when,
            updated_at=when,
            connect_guid=connect_guid,
        )
    )
    for kind, payload in outbox:
        await conn.execute(
            _old_outbox.insert().values(
                request_id=request_id, kind=kind, payload=payload, created_at=when
            )
        )
