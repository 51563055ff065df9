"""Migrated, isolated SQL store backends for tests: a temp-file SQLite DB and a throwaway
PostgreSQL schema.

Use from any test module (or re-export from conftest.py):

    # parametrised: sqlite, postgres
    from tests.support.store_backends import store_backend  # noqa: F401

    async def test_something(store_backend: StoreBackend) -> None:
        await store_backend.store.create(...)
        other = store_backend.new_store()  # a second engine on the same database ("replica")

PostgreSQL comes from TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test). When
it is unreachable the postgres cases are skipped, except under CI=true, where they fail: a CI run
that silently skipped them would prove nothing about multi-replica safety.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from bot.store.database import create_engine
from bot.store.migrate import upgrade
from bot.store.sql_store import SqlRequestStore
from bot.store.urls import normalize_database_url

BACKENDS = ("sqlite", "postgres")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_URL_ENV = "TEST_POSTGRES_URL"

_postgres_problem: str | None = None
_postgres_checked = False


@dataclass
class StoreBackend:
    name: str  # "sqlite" or "postgres"
    url: str  # reaches the same database (and schema); hand it to create_engine for a "replica"
    engine: AsyncEngine
    store: SqlRequestStore
    _extra_engines: list[AsyncEngine] = field(default_factory=list, repr=False)

    def new_engine(self, **engine_options: Any) -> AsyncEngine:
        """Another engine on the same database, disposed with the backend."""
        engine = create_engine(self.url, **engine_options)
        self._extra_engines.append(engine)
        return engine

    def new_store(self, **engine_options: Any) -> SqlRequestStore:
        return SqlRequestStore(self.new_engine(**engine_options))

    async def dispose(self) -> None:
        for engine in [*self._extra_engines, self.engine]:
            await engine.dispose()
        self._extra_engines.clear()


def postgres_admin_url() -> str:
    return normalize_database_url(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


async def require_postgres() -> str:
    """The admin URL, or skip (fail under CI=true) when PostgreSQL cannot be reached."""
    global _postgres_checked, _postgres_problem
    url = postgres_admin_url()
    if not _postgres_checked:
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 3})
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            parsed = make_url(url)
            _postgres_problem = (
                f"PostgreSQL not reachable at {parsed.host or 'localhost'}:{parsed.port or 5432}: "
                f"{type(exc).__name__}: {exc}"
            )
        finally:
            await engine.dispose()
        _postgres_checked = True
    if _postgres_problem is not None:
        _unavailable(_postgres_problem)
    return url


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh, empty schema; yields a URL whose connections use it as search_path."""
    admin_url = await require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        # Unknown URL parameters become asyncpg server_settings, so every connection of every
        # engine made from this URL starts with this search_path.
        url = make_url(admin_url).update_query_dict({"search_path": schema})
        yield url.render_as_string(hide_password=False)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@asynccontextmanager
async def open_store_backend(
    name: str, tmp_path: Path, *, migrate: bool = True, **engine_options: Any
) -> AsyncIterator[StoreBackend]:
    """An isolated database for one test; migrated to head unless `migrate=False`."""
    if name == "sqlite":
        url = normalize_database_url(f"sqlite:///{tmp_path / 'store.db'}")
        async with _backend(name, url, migrate, engine_options) as backend:
            yield backend
    elif name == "postgres":
        async with (
            postgres_schema() as url,
            _backend(name, url, migrate, engine_options) as backend,
        ):
            yield backend
    else:
        raise ValueError(f"unknown store backend {name!r}; expected one of {BACKENDS}")


@asynccontextmanager
async def _backend(
    name: str, url: str, migrate: bool, engine_options: dict[str, Any]
) -> AsyncIterator[StoreBackend]:
    engine = create_engine(url, **engine_options)
    backend = StoreBackend(name=name, url=url, engine=engine, store=SqlRequestStore(engine))
    try:
        if migrate:
            await upgrade(engine)
        yield backend
    finally:
        await backend.dispose()


@pytest_asyncio.fixture(params=BACKENDS)
async def store_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreBackend]:
    async with open_store_backend(request.param, tmp_path) as backend:
        yield backend


@pytest_asyncio.fixture
async def sqlite_store_backend(tmp_path: Path) -> AsyncIterator[StoreBackend]:
    async with open_store_backend("sqlite", tmp_path) as backend:
        yield backend


@pytest_asyncio.fixture
async def postgres_store_backend(tmp_path: Path) -> AsyncIterator[StoreBackend]:
    async with open_store_backend("postgres", tmp_path) as backend:
        yield backend


__all__ = [
    "BACKENDS",
    "StoreBackend",
    "open_store_backend",
    "postgres_admin_url",
    "postgres_schema",
    "postgres_store_backend",
    "require_postgres",
    "sqlite_store_backend",
    "store_backend",
]
