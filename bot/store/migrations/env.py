"""Alembic environment for the bot's schema.

`bot.store.migrate` runs migrations programmatically: it opens the transaction (holding the
PostgreSQL advisory lock) and hands the synchronous connection in through
`config.attributes["connection"]` from inside `AsyncConnection.run_sync`. When a developer runs
the alembic CLI instead, the URL comes from `-x url=...` or DATABASE_URL (read by
`bot.settings.DatabaseSettings`), never from alembic.ini.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.tables import metadata

config = context.config
target_metadata = metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode lets later migrations change columns there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run_on(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _cli_url() -> str:
    from bot.settings import DatabaseSettings
    from bot.store.urls import normalize_database_url

    given = context.get_x_argument(as_dictionary=True).get("url")
    return normalize_database_url(given) if given else DatabaseSettings().database_url


async def _run_from_cli() -> None:
    from bot.store.database import create_engine

    engine = create_engine(_cli_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=_cli_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    # Only the CLI gets here; the application keeps its own logging configuration.
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_from_cli())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
