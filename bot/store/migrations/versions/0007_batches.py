"""Requests filed together: a batch, its parts (one approval card each), and the request whose
queue carries a shared card's messages; and requests filed by a Workflow Builder step: the
execution to complete when they are decided, and how completing it went.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("provisioning_requests", sa.Column("batch_id", sa.String(32), nullable=True))
    op.add_column("provisioning_requests", sa.Column("batch_part", sa.Integer(), nullable=True))
    op.add_column(
        "provisioning_requests", sa.Column("card_request_id", sa.String(32), nullable=True)
    )
    op.create_index("ix_provisioning_requests_batch_id", "provisioning_requests", ["batch_id"])
    op.add_column(
        "provisioning_requests", sa.Column("workflow_execution_id", sa.String(64), nullable=True)
    )
    op.add_column(
        "provisioning_requests", sa.Column("workflow_result", sa.String(20), nullable=True)
    )


def downgrade() -> None:
    op.drop_index("ix_provisioning_requests_batch_id", table_name="provisioning_requests")
    with op.batch_alter_table("provisioning_requests") as batch:
        for column in (
            "workflow_result",
            "workflow_execution_id",
            "card_request_id",
            "batch_part",
            "batch_id",
        ):
            batch.drop_column(column)
