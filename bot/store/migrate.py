"""Bring the schema to the newest revision, from the app at startup or from a one-off command.

There is no `metadata.create_all` anywhere: the Alembic revisions under `migrations/versions`
are the only thing that creates or changes tables, so every database goes through the same steps.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.database import create_engine, for_reads
from bot.store.urls import redact_url

log = logging.getLogger(__name__)

# Resolved from this file, not the working directory, so an installed (non-editable) package
# finds its migrations wherever it runs from.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any fixed 64-bit key works; derived from a name so it is recognisable in pg_locks.
_ADVISORY_LOCK_KEY = zlib.crc32(b"connect-user-bot:migrations")


def _alembic_config(connection: Connection | None = None) -> Config:
    # No ini file: alembic.ini's logging sections are for the CLI and would clobber the app's.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(_alembic_config()).get_heads())


async def upgrade(engine_or_url: AsyncEngine | str) -> None:
    """Migrate to head. Idempotent, and safe when several replicas start at once.

    The whole upgrade runs in one transaction: on PostgreSQL under a transaction-scoped advisory
    lock (the second replica waits, then finds nothing to do; DDL is transactional, so a failed
    migration leaves nothing half-done); on SQLite under BEGIN IMMEDIATE, which serialises the
    same way, with foreign keys off while it runs. Passing a URL string opens and disposes a
    temporary engine (so pass an engine for :memory:).
    """
    if isinstance(engine_or_url, str):
        engine = create_engine(engine_or_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        return

    engine = engine_or_url
    log.info("migrating database %s to head", redact_url(engine.url))
    async with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            await _upgrade_sqlite(connection)
            return
        async with connection.begin():
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
                )
            await connection.run_sync(_upgrade_sync)


async def _upgrade_sqlite(connection: AsyncConnection) -> None:
    # Alembic's batch mode changes a SQLite table by copying it and dropping the original; with
    # foreign keys on, that DROP would cascade and delete every outbox row. The pragma is ignored
    # inside a transaction, so it is switched on the raw connection before ours begins, and the
    # result is checked before committing instead.
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.execute("PRAGMA foreign_keys = OFF")
    try:
        async with connection.begin():
            await connection.run_sync(_upgrade_sync)
            problems = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if problems:
                raise RuntimeError(f"migration left dangling foreign keys: {problems[:5]}")
    finally:
        await driver.execute("PRAGMA foreign_keys = ON")


def _upgrade_sync(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    async with for_reads(engine).connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def is_up_to_date(engine: AsyncEngine) -> bool:
    async with for_reads(engine).connect() as connection:
        current = await connection.run_sync(
            lambda sync: set(MigrationContext.configure(sync).get_current_heads())
        )
    return current == head_revisions()
