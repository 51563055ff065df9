"""The schema as SQLAlchemy Core tables.

This describes the schema for queries; the migrations in `bot/store/migrations/versions` create
it. Change both together (a new column here needs a new migration there).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

ACTIVE_STATE_VALUES = ("pending", "provisioning", "incomplete")
ACTIVE_USERNAME_INDEX = "uq_provisioning_requests_active_username"
ACTIVE_GROUP_INDEX = "uq_provisioning_requests_active_group_name"
# A group request (kind new_group) holds no person: it is one per group name instead.
_ACTIVE_PERSON_WHERE = sa.text(
    "state IN ('pending', 'provisioning', 'incomplete') AND kind != 'new_group'"
)
_ACTIVE_GROUP_WHERE = sa.text(
    "state IN ('pending', 'provisioning', 'incomplete') AND group_name IS NOT NULL"
)
_UNDELIVERED_WHERE = sa.text("delivered_at IS NULL AND failed_at IS NULL")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite stores datetimes as text without an offset, so an aware value in another zone would be
    stored as its wall-clock time and compare wrongly; everything is converted to UTC on the way
    in, and SQLite's naive results are marked UTC on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            # A naive datetime is almost always local time by accident; refuse rather than guess.
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite compares these as strings, so they must all be in one zone and one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONPayload(sa.TypeDecorator[dict[str, Any]]):
    """A JSON object; stored as text on SQLite and as json on PostgreSQL."""

    impl = sa.JSON(none_as_null=True)
    cache_ok = True


class JSONList(sa.TypeDecorator[list[Any]]):
    """A JSON array; stored as text on SQLite and as json on PostgreSQL."""

    impl = sa.JSON(none_as_null=True)
    cache_ok = True


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

provisioning_requests = sa.Table(
    "provisioning_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    # Indexed for `/connect-user status` and the Home tab, which list one person's requests.
    sa.Column("requester_id", sa.String(64), nullable=False, index=True),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("full_name", sa.String(255), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("temp_ticket", sa.Text, nullable=False),
    sa.Column("justification", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Column("deny_reason", sa.Text, nullable=True),
    sa.Column("connect_guid", sa.String(64), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("card_channel", sa.String(64), nullable=True),
    sa.Column("card_ts", sa.String(32), nullable=True),
    sa.Column("lease_owner", sa.String(255), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("last_reminder_at", UTCDateTime, nullable=True),
    # When the approval's PUT was sent, by the database's clock: whoever settles an unknown
    # outcome (this process or another after a crash) compares Connect's created_time with it.
    sa.Column("put_sent_at", UTCDateTime, nullable=True),
    # The first PUT whose answer never came (kept until the request ends): an account Connect
    # created after it may be this request's.
    sa.Column("unknown_put_at", UTCDateTime, nullable=True),
    # What settling found, when the record alone would not say it (e.g. Connect answered "in
    # use" for the account this very approval had created).
    sa.Column("outcome_note", sa.Text, nullable=True),
    # What the request asks for (a new account, a role change) and the steps that carry it out,
    # each with its own status, so a crash between two steps never repeats a done one.
    sa.Column("kind", sa.String(20), nullable=False, server_default="new_account"),
    sa.Column("role_asked", sa.String(20), nullable=True),
    sa.Column("role_granted", sa.String(20), nullable=True),
    sa.Column("role_before", sa.String(20), nullable=True),
    sa.Column("raised_by", sa.String(64), nullable=True),
    sa.Column("raised_from", sa.String(20), nullable=True),
    sa.Column("closed_by", sa.String(64), nullable=True),
    sa.Column("subject_id", sa.String(64), nullable=True),
    sa.Column("subject_link", sa.String(20), nullable=True),
    sa.Column("escalated_at", UTCDateTime, nullable=True),
    sa.Column("steps", JSONList, nullable=False, server_default="[]"),
    # A group request: the directory group's name (no person).
    sa.Column("group_name", sa.Text, nullable=True),
    # The Connect groups an account request adds the account to: [{"guid", "name"}].
    sa.Column("groups", JSONList, nullable=False, server_default="[]"),
    # A request filed with others (one card for them all): the batch, its part (one card per
    # part), and the request whose queue carries the card's messages (None: itself).
    sa.Column("batch_id", sa.String(32), nullable=True, index=True),
    sa.Column("batch_part", sa.Integer, nullable=True),
    sa.Column("card_request_id", sa.String(32), nullable=True),
    # Filed by a Workflow Builder step: the execution completed when the request is decided,
    # and how that went ("completed", "failed", or "gone": the run had ended by then).
    sa.Column("workflow_execution_id", sa.String(64), nullable=True),
    sa.Column("workflow_result", sa.String(20), nullable=True),
    # Which round of approvals counts: a decision undone (the request back to pending after
    # Connect refused) starts a new one, so earlier approvals never call Connect again alone.
    sa.Column("approval_round", sa.Integer, nullable=False, server_default=sa.text("0")),
    # The database, not the service, guarantees one active request per username, so two replicas
    # inserting at the same instant cannot both succeed.
    sa.Index(
        ACTIVE_USERNAME_INDEX,
        "username",
        unique=True,
        sqlite_where=_ACTIVE_PERSON_WHERE,
        postgresql_where=_ACTIVE_PERSON_WHERE,
    ),
    sa.Index(
        ACTIVE_GROUP_INDEX,
        "group_name",
        unique=True,
        sqlite_where=_ACTIVE_GROUP_WHERE,
        postgresql_where=_ACTIVE_GROUP_WHERE,
    ),
)

outbox = sa.Table(
    "outbox",
    metadata,
    # INTEGER PRIMARY KEY is SQLite's rowid alias (BIGINT would not autoincrement there);
    # AUTOINCREMENT keeps ids monotonic, which per-request delivery order relies on.
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column(
        "request_id",
        sa.String(32),
        sa.ForeignKey("provisioning_requests.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", JSONPayload, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("lease_owner", sa.String(255), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("failed_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    # Keeps the claim query cheap once delivered rows pile up.
    sa.Index(
        "ix_outbox_undelivered",
        "id",
        sqlite_where=_UNDELIVERED_WHERE,
        postgresql_where=_UNDELIVERED_WHERE,
    ),
    sqlite_autoincrement=True,
)

# One row per approver and role a request was approved for: the unique constraint makes an
# approver count once however often they click, and counting rows under the request's row lock
# decides which approval is the last one needed.
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column(
        "request_id",
        sa.String(32),
        sa.ForeignKey("provisioning_requests.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # The request's approval_round when it was given: only the current round counts.
    sa.Column("round", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("approver_id", sa.String(64), nullable=False),
    # The role the approver saw; "" for Connect's default role (NULLs would not be unique).
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("request_id", "round", "approver_id", "role"),
    sqlite_autoincrement=True,
)

REQUEST_COLUMNS = frozenset(provisioning_requests.c.keys())


def database_now(dialect: str, plus_seconds: float = 0.0) -> sa.ColumnElement[datetime]:
    """The database's clock (plus some seconds) as an SQL expression.

    PostgreSQL: the statement's start time on the server. SQLite has no server, so its clock
    is the host's, read by SQLite itself and written in the text format SQLAlchemy stores
    datetimes in (UTC, microseconds), so that the two compare as strings.
    """
    if dialect == "postgresql":
        expression: sa.ColumnElement[Any] = sa.func.statement_timestamp()
        if plus_seconds:
            expression = expression + sa.func.make_interval(
                0, 0, 0, 0, 0, 0, sa.literal(float(plus_seconds), sa.Float)
            )
    else:
        expression = sa.func.strftime(
            "%Y-%m-%d %H:%M:%f000", "now", f"{float(plus_seconds):+.6f} seconds"
        )
    return sa.type_coerce(expression, UTCDateTime)
