"""Approvals as rows: one per approver and role (and round), so that a request can need several.

Existing decided requests keep their single decider in `decided_by`; no rows are made for them
(the card of a request decided before this shows who decided, as before).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "provisioning_requests",
        sa.Column("approval_round", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "approvals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "request_id",
            sa.String(32),
            sa.ForeignKey(
                "provisioning_requests.id",
                ondelete="CASCADE",
                name="fk_approvals_request_id_provisioning_requests",
            ),
            nullable=False,
        ),
        sa.Column("round", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("approver_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.UniqueConstraint(
            "request_id",
            "round",
            "approver_id",
            "role",
            name="uq_approvals_request_id_round_approver_id_role",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_approvals_request_id", "approvals", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_approvals_request_id", table_name="approvals")
    op.drop_table("approvals")
    with op.batch_alter_table("provisioning_requests") as batch:
        batch.drop_column("approval_round")
