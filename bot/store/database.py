"""The async engine, configured so concurrent writers behave on both SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from bot.store.urls import (
    is_memory_sqlite,
    normalize_database_url,
    split_asyncpg_options,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution option read by the SQLite "begin" hook: reads may start a deferred transaction, which
# in WAL mode never waits for writers; everything else takes the write lock up front.
SQLITE_BEGIN_OPTION = "sqlite_begin"


def create_engine(url: str | URL, **engine_options: Any) -> AsyncEngine:
    """An AsyncEngine for a database URL in any form `normalize_database_url` accepts.

    `engine_options` go to `create_async_engine` (pool sizes, echo, ...) and win over ours.
    """
    raw = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    normalized = make_url(normalize_database_url(raw))
    # Bound parameters include temporary tickets; they must never reach an exception message.
    options: dict[str, Any] = {"hide_parameters": True}
    if normalized.get_backend_name() == "sqlite":
        if is_memory_sqlite(normalized):
            # One connection holds the whole in-memory database; a single-slot queue pool makes
            # coroutines take turns with it instead of sharing one transaction (StaticPool would).
            options.update(
                poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_recycle=-1
            )
        options.update(engine_options)
        engine = create_async_engine(normalized, **options)
        _configure_sqlite(engine)
    else:
        normalized, connect_args = split_asyncpg_options(normalized)
        connect_args.update(engine_options.pop("connect_args", {}))
        options.update(pool_pre_ping=True, connect_args=connect_args)
        options.update(engine_options)
        engine = create_async_engine(normalized, **options)
    event.listen(engine.sync_engine, "handle_error", _scrub_error)
    return engine


# PostgreSQL's DETAIL for NOT NULL and CHECK violations prints the whole row, ticket included,
# and asyncpg's client-side encoding errors print the offending argument. hide_parameters covers
# neither: the DETAIL rides on the chained asyncpg exception and shows up in every traceback.
_FAILING_ROW_RE = re.compile(r"(Failing row contains )\(.*\)", re.DOTALL)
_QUERY_ARGUMENT_RE = re.compile(
    r"(invalid input for query argument \$\d+:) .*?( \([^()]*\))?$", re.DOTALL
)
_MAX_CHAIN = 8


def _scrub_text(text: str) -> str:
    text = _FAILING_ROW_RE.sub(r"\1(values hidden)", text)
    return _QUERY_ARGUMENT_RE.sub(lambda m: f"{m.group(1)} (value hidden){m.group(2) or ''}", text)


def _scrub_exception(exc: BaseException) -> None:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, str):
        with contextlib.suppress(AttributeError):
            # asyncpg's errors carry `detail`; BaseException does not declare it.
            exc.detail = _scrub_text(detail)  # type: ignore[attr-defined]
    if exc.args and isinstance(exc.args[0], str):
        scrubbed = _scrub_text(exc.args[0])
        if scrubbed != exc.args[0]:
            exc.args = (scrubbed, *exc.args[1:])


def _scrub_error(context: Any) -> None:
    if context.sqlalchemy_exception is not None:
        # hide_parameters keeps them out of the message; error reporters that dump exception
        # attributes would still find them here.
        context.sqlalchemy_exception.params = None
    seen: set[int] = set()
    pending: list[BaseException | None] = [
        context.sqlalchemy_exception,
        context.original_exception,
    ]
    while pending and len(seen) < _MAX_CHAIN * 2:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        _scrub_exception(exc)
        pending.extend((exc.__cause__, exc.__context__, getattr(exc, "orig", None)))


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver (SQLAlchemy's documented aiosqlite
        # recipe): the driver's implicit deferred BEGIN would let two writers both read, then
        # fail to upgrade to a write lock with "database is locked" regardless of busy_timeout.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        if mode not in ("IMMEDIATE", "DEFERRED", "EXCLUSIVE"):
            raise ValueError(f"invalid {SQLITE_BEGIN_OPTION} execution option: {mode!r}")
        # IMMEDIATE takes the write lock now, waiting up to busy_timeout for it, so conditional
        # UPDATEs from concurrent writers queue up instead of failing.
        connection.exec_driver_sql(f"BEGIN {mode}")


def for_reads(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, but SQLite transactions start deferred: for reads that must not queue
    behind writers (health checks, lookups). A no-op distinction on PostgreSQL."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
