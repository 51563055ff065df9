"""Requests about groups: a directory group brought into Connect (no person), and the Connect
groups an account request adds the account to.

A group request holds no username: the one-active-request-per-username index leaves it out, and
a second index holds one active request per group name instead, so a group can never block (or
be blocked by) a person who happens to share its name.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_USERNAME_INDEX = "uq_provisioning_requests_active_username"
_GROUP_INDEX = "uq_provisioning_requests_active_group_name"
_ACTIVE = "state IN ('pending', 'provisioning', 'incomplete')"
_ACTIVE_PERSON = sa.text(f"{_ACTIVE} AND kind != 'new_group'")
_ACTIVE_GROUP = sa.text(f"{_ACTIVE} AND group_name IS NOT NULL")


def upgrade() -> None:
    op.add_column("provisioning_requests", sa.Column("group_name", sa.Text(), nullable=True))
    op.add_column(
        "provisioning_requests",
        sa.Column("groups", sa.JSON(), nullable=False, server_default="[]"),
    )
    op.drop_index(_USERNAME_INDEX, table_name="provisioning_requests")
    op.create_index(
        _USERNAME_INDEX,
        "provisioning_requests",
        ["username"],
        unique=True,
        sqlite_where=_ACTIVE_PERSON,
        postgresql_where=_ACTIVE_PERSON,
    )
    op.create_index(
        _GROUP_INDEX,
        "provisioning_requests",
        ["group_name"],
        unique=True,
        sqlite_where=_ACTIVE_GROUP,
        postgresql_where=_ACTIVE_GROUP,
    )


def downgrade() -> None:
    op.drop_index(_GROUP_INDEX, table_name="provisioning_requests")
    op.execute("DELETE FROM provisioning_requests WHERE kind = 'new_group'")
    op.drop_index(_USERNAME_INDEX, table_name="provisioning_requests")
    active = sa.text(_ACTIVE)
    op.create_index(
        _USERNAME_INDEX,
        "provisioning_requests",
        ["username"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )
    with op.batch_alter_table("provisioning_requests") as batch:
        batch.drop_column("groups")
        batch.drop_column("group_name")
