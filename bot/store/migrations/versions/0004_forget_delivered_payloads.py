"""Forget what delivered or given-up outbox messages carried (a requester's response_url).

The outbox used to keep each message's payload forever; a confirmation's payload is the
response_url of the requester's click, which lets anyone holding it post into that conversation.
The store now empties a payload once its message is delivered or given up; this clears the rows
written before that.

Revision ID: 0004
Revises: 0003
Create Date: 2025-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from bot.store.tables, as in 0001.
_outbox = sa.table(
    "outbox",
    sa.column("payload", sa.JSON()),
    sa.column("delivered_at", sa.DateTime(timezone=True)),
    sa.column("failed_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.execute(
        _outbox.update()
        .where(sa.or_(_outbox.c.delivered_at.is_not(None), _outbox.c.failed_at.is_not(None)))
        .values(payload={})
    )


def downgrade() -> None:
    # What was forgotten cannot come back; the schema is unchanged.
    pass
