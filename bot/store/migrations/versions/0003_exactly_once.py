"""Exactly once with a slow Connect: when the PUT was sent, since when an outcome is unknown,
and what settling it found.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without defaults: added in place on SQLite, without a rewrite on PostgreSQL.
    op.add_column(
        "provisioning_requests",
        sa.Column("put_sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "provisioning_requests",
        sa.Column("unknown_put_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("provisioning_requests", sa.Column("outcome_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provisioning_requests") as batch:
        batch.drop_column("outcome_note")
        batch.drop_column("unknown_put_at")
        batch.drop_column("put_sent_at")
