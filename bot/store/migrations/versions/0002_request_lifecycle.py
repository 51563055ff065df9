"""Request lifecycle: when approvers were last reminded, and listing a person's requests.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: SQLite adds it in place (no batch copy of the table),
    # PostgreSQL without rewriting the rows.
    op.add_column(
        "provisioning_requests",
        sa.Column("last_reminder_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_provisioning_requests_requester_id", "provisioning_requests", ["requester_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_provisioning_requests_requester_id", table_name="provisioning_requests")
    with op.batch_alter_table("provisioning_requests") as batch:
        batch.drop_column("last_reminder_at")
