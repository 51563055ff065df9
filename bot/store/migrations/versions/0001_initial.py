"""Provisioning requests and the outbox of messages owed for them.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from bot.store.tables: a migration must keep creating the
# schema as it was at this revision, whatever the tables module says later.
_ACTIVE_WHERE = sa.text("state IN ('pending', 'provisioning')")
_UNDELIVERED_WHERE = sa.text("delivered_at IS NULL AND failed_at IS NULL")


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provisioning_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("requester_id", sa.String(64), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("full_name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("temp_ticket", sa.Text(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", _tz(), nullable=True),
        sa.Column("deny_reason", sa.Text(), nullable=True),
        sa.Column("connect_guid", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("card_channel", sa.String(64), nullable=True),
        sa.Column("card_ts", sa.String(32), nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", _tz(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_provisioning_requests"),
    )
    op.create_index("ix_provisioning_requests_state", "provisioning_requests", ["state"])
    op.create_index(
        "uq_provisioning_requests_active_username",
        "provisioning_requests",
        ["username"],
        unique=True,
        sqlite_where=_ACTIVE_WHERE,
        postgresql_where=_ACTIVE_WHERE,
    )

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", _tz(), nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", _tz(), nullable=True),
        sa.Column("delivered_at", _tz(), nullable=True),
        sa.Column("failed_at", _tz(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["provisioning_requests.id"],
            name="fk_outbox_request_id_provisioning_requests",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_request_id", "outbox", ["request_id"])
    op.create_index(
        "ix_outbox_undelivered",
        "outbox",
        ["id"],
        sqlite_where=_UNDELIVERED_WHERE,
        postgresql_where=_UNDELIVERED_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_undelivered", table_name="outbox")
    op.drop_index("ix_outbox_request_id", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("uq_provisioning_requests_active_username", table_name="provisioning_requests")
    op.drop_index("ix_provisioning_requests_state", table_name="provisioning_requests")
    op.drop_table("provisioning_requests")
