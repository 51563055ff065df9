"""Requests carry access: a kind, the role asked and granted, and the steps that carry them out.

Every existing request was a new account made with Connect's default role: it becomes a
"new account" request with one step, done when the request ended with an account.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "uq_provisioning_requests_active_username"
_ACTIVE_BEFORE = sa.text("state IN ('pending', 'provisioning')")
_ACTIVE_NOW = sa.text("state IN ('pending', 'provisioning', 'incomplete')")
_requests = sa.table(
    "provisioning_requests",
    sa.column("state", sa.String()),
    sa.column("steps", sa.JSON()),
)


def _one_step(status: str) -> list[dict[str, object]]:
    return [
        {"action": "create_account", "status": status, "error": None, "note": None, "done_at": None}
    ]


def upgrade() -> None:
    op.add_column(
        "provisioning_requests",
        sa.Column("kind", sa.String(20), nullable=False, server_default="new_account"),
    )
    for column, length in (
        ("role_asked", 20),
        ("role_granted", 20),
        ("role_before", 20),
        ("raised_by", 64),
        ("raised_from", 20),
        ("closed_by", 64),
        ("subject_id", 64),
        ("subject_link", 20),
    ):
        op.add_column("provisioning_requests", sa.Column(column, sa.String(length), nullable=True))
    op.add_column(
        "provisioning_requests",
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "provisioning_requests",
        sa.Column("steps", sa.JSON(), nullable=False, server_default="[]"),
    )
    # Each existing request gets its one step: done where the request created the account,
    # skipped where the account was there already, not carried out otherwise.
    state = _requests.c.state
    op.execute(_requests.update().where(state == "approved").values(steps=_one_step("done")))
    op.execute(
        _requests.update().where(state == "already_exists").values(steps=_one_step("skipped"))
    )
    op.execute(
        _requests.update()
        .where(state.not_in(("approved", "already_exists")))
        .values(steps=_one_step("pending"))
    )

    # An incomplete request (a step left to retry) still holds the person: one active request
    # per username counts it.
    op.drop_index(_INDEX, table_name="provisioning_requests")
    op.create_index(
        _INDEX,
        "provisioning_requests",
        ["username"],
        unique=True,
        sqlite_where=_ACTIVE_NOW,
        postgresql_where=_ACTIVE_NOW,
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="provisioning_requests")
    op.create_index(
        _INDEX,
        "provisioning_requests",
        ["username"],
        unique=True,
        sqlite_where=_ACTIVE_BEFORE,
        postgresql_where=_ACTIVE_BEFORE,
    )
    with op.batch_alter_table("provisioning_requests") as batch:
        for column in (
            "steps",
            "escalated_at",
            "subject_link",
            "subject_id",
            "closed_by",
            "raised_from",
            "raised_by",
            "role_before",
            "role_granted",
            "role_asked",
            "kind",
        ):
            batch.drop_column(column)
