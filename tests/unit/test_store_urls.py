"""DATABASE_URL read without a database: the forms people paste normalised to the async drivers,
what asyncpg is handed, and bad URLs refused without echoing a password. The store behind them:
tests/store/test_store.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.store.database import create_engine
from bot.store.urls import (
    DEFAULT_DATABASE_URL,
    MEMORY_DATABASE_URL,
    normalize_database_url,
    redact_url,
    split_asyncpg_options,
)

SECRET = "hunter2"

SQLITE_CASES = [
    (None, DEFAULT_DATABASE_URL),
    ("", DEFAULT_DATABASE_URL),
    ("   \n", DEFAULT_DATABASE_URL),
    ("sqlite:///./bot.db", "sqlite+aiosqlite:///./bot.db"),
    ("sqlite:///bot.db", "sqlite+aiosqlite:///bot.db"),
    ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
    ("sqlite+aiosqlite:///./bot.db", "sqlite+aiosqlite:///./bot.db"),
    ("sqlite+aiosqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
    ("sqlite+pysqlite:///./bot.db", "sqlite+aiosqlite:///./bot.db"),
    ("SQLite:///./bot.db", "sqlite+aiosqlite:///./bot.db"),
    ('"sqlite:///./bot.db"', "sqlite+aiosqlite:///./bot.db"),
    ("'sqlite:////abs/path.db'\n", "sqlite+aiosqlite:////abs/path.db"),
    ("sqlite:///./bot.db?timeout=10", "sqlite+aiosqlite:///./bot.db?timeout=10"),
    ("./data/bot.db", "sqlite+aiosqlite:///./data/bot.db"),
    ("/var/lib/bot/bot.sqlite3", "sqlite+aiosqlite:////var/lib/bot/bot.sqlite3"),
    ("sqlite://", MEMORY_DATABASE_URL),
    ("sqlite:///:memory:", MEMORY_DATABASE_URL),
    ("sqlite+aiosqlite://", MEMORY_DATABASE_URL),
    ("sqlite+aiosqlite:///:memory:", MEMORY_DATABASE_URL),
    (":memory:", MEMORY_DATABASE_URL),
]


@pytest.mark.parametrize(("raw", "expected"), SQLITE_CASES)
def test_normalize_sqlite(raw: str | None, expected: str) -> None:
    assert normalize_database_url(raw) == expected
    # Idempotent: the app may normalise a URL that was normalised already.
    assert normalize_database_url(expected) == expected


PG = "postgresql+asyncpg://bot:s3cret@db.example.com:5432/bot"

POSTGRES_CASES = [
    ("postgres://bot:s3cret@db.example.com:5432/bot", {}),
    ("postgresql://bot:s3cret@db.example.com:5432/bot", {}),
    ("postgresql+psycopg2://bot:s3cret@db.example.com:5432/bot", {}),
    ("postgresql+psycopg://bot:s3cret@db.example.com:5432/bot", {}),
    ("postgresql+asyncpg://bot:s3cret@db.example.com:5432/bot", {}),
    ("postgresql+pg8000://bot:s3cret@db.example.com:5432/bot", {}),
    (" 'postgres://bot:s3cret@db.example.com:5432/bot' ", {}),
    *[
        (f"postgres://bot:s3cret@db.example.com:5432/bot?sslmode={mode}", {"ssl": mode})
        for mode in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
    ],
    ("postgres://bot:s3cret@db.example.com:5432/bot?sslmode=REQUIRE", {"ssl": "require"}),
    ("postgres://bot:s3cret@db.example.com:5432/bot?ssl=true", {"ssl": "require"}),
    ("postgres://bot:s3cret@db.example.com:5432/bot?ssl=false", {"ssl": "disable"}),
    ("postgres://bot:s3cret@db.example.com:5432/bot?ssl=verify_full", {"ssl": "verify-full"}),
    (
        "postgres://bot:s3cret@db.example.com:5432/bot?sslmode=require&ssl=require",
        {"ssl": "require"},
    ),
    ("postgres://bot:s3cret@db.example.com:5432/bot?connect_timeout=10", {"timeout": "10"}),
    ("postgres://bot:s3cret@db.example.com:5432/bot?connect_timeout=0", {}),
    (
        "postgres://bot:s3cret@db.example.com:5432/bot?application_name=bot",
        {"application_name": "bot"},
    ),
    (
        "postgres://bot:s3cret@db.example.com:5432/bot?fallback_application_name=fb",
        {"application_name": "fb"},
    ),
    (
        "postgres://bot:s3cret@db.example.com:5432/bot"
        "?keepalives=1&keepalives_idle=30&keepalives_interval=5&keepalives_count=3"
        "&tcp_user_timeout=1000&channel_binding=prefer&gssencmode=disable&client_encoding=UTF8",
        {},
    ),
    ("postgres://bot:s3cret@db.example.com:5432/?dbname=bot", {"database": "bot"}),
    (
        "postgres://bot:s3cret@db.example.com:5432/bot?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        {"ssl": "verify-full", "sslrootcert": "/etc/ca.pem"},
    ),
    (
        "postgres://bot:s3cret@db.example.com:5432/bot?command_timeout=30&statement_cache_size=0",
        {"command_timeout": "30", "statement_cache_size": "0"},
    ),
    (
        "postgres://bot:s3cret@db.example.com:5432/bot?target_session_attrs=read-write",
        {"target_session_attrs": "read-write"},
    ),
]


@pytest.mark.parametrize(("raw", "query"), POSTGRES_CASES)
def test_normalize_postgres(raw: str, query: dict[str, str]) -> None:
    result = normalize_database_url(raw)
    url = make_url(result)
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port) == (
        "bot",
        "s3cret",
        "db.example.com",
        5432,
    )
    assert dict(url.query) == query
    assert normalize_database_url(result) == result


def test_normalize_keeps_encoded_password_and_heroku_form() -> None:
    raw = "postgres://u1:p%40ss%2Fw0rd@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d9?sslmode=require"
    url = make_url(normalize_database_url(raw))
    assert url.password == "p@ss/w0rd"
    assert url.host == "ec2-1-2-3-4.compute-1.amazonaws.com"
    assert dict(url.query) == {"ssl": "require"}


def test_normalize_keeps_unix_socket_host() -> None:
    url = make_url(normalize_database_url("postgresql://bot@/bot?host=/var/run/postgresql"))
    assert url.drivername == "postgresql+asyncpg"
    assert dict(url.query) == {"host": "/var/run/postgresql"}


BAD_URLS = [
    f"mysql://bot:{SECRET}@db/bot",
    f"mongodb+srv://bot:{SECRET}@cluster0.example.net/bot",
    f"postgresql+foo://bot:{SECRET}@db/bot",
    f"http://bot:{SECRET}@db/bot",
    f"host=db user=bot password={SECRET} dbname=bot",
    f"host=db user=bot password='{SECRET} x' dbname=bot",
    "bot.txt",
    f"sqlite://bot:{SECRET}@host/x.db",
    f"postgres://bot:{SECRET}@db/bot?sslmode=bogus",
    f"postgres://bot:{SECRET}@db/bot?sslmode=require&ssl=disable",
    f"postgres://bot:{SECRET}@db/bot?hostaddr=10.0.0.1",
    f"postgres://bot:{SECRET}@db/bot?channel_binding=require",
    f"postgres://bot:{SECRET}@db/bot?gssencmode=require",
    f"postgres://bot:{SECRET}@db/bot?connect_timeout=soon",
    f"postgres://bot:{SECRET}@db/bot?timeout=-1",
    f"postgres://bot:{SECRET}@db/bot?client_encoding=latin1",
    f"postgres://bot:{SECRET}@db/bot?direct_tls=maybe",
    f"postgres://bot@db/bot?password={SECRET}&sslmode=bogus",
    f"postgres://bot:{SECRET}@db/bot?sslpassword={SECRET}&replication=1",
]


@pytest.mark.parametrize("raw", BAD_URLS)
def test_normalize_rejects_without_echoing_password(raw: str) -> None:
    with pytest.raises(ValueError) as info:
        normalize_database_url(raw)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


@pytest.mark.parametrize("raw", BAD_URLS[:4])
def test_unknown_scheme_error_names_accepted_forms(raw: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite.*postgres://") as info:
        normalize_database_url(raw)
    assert "***" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+asyncpg://bot:{SECRET}@db/bot",
        f"postgres://bot:{SECRET}@db/bot?sslpassword={SECRET}&password={SECRET}",
        f"mysql://bot:{SECRET}@db/bot",
        f"weird://bot:{SECRET}@ex@tra@db/bot",
        f"host=db password={SECRET} user=bot",
        make_url(f"postgresql+asyncpg://bot:{SECRET}@db/bot"),
    ],
)
def test_redact_url_masks_passwords(url: str) -> None:
    redacted = redact_url(url)
    assert SECRET not in redacted
    assert "***" in redacted


def test_redact_url_leaves_passwordless_urls_alone() -> None:
    assert redact_url("sqlite+aiosqlite:///./bot.db") == "sqlite+aiosqlite:///./bot.db"
    assert redact_url(None) == ""


def test_split_asyncpg_options_types_values_for_asyncpg() -> None:
    url = normalize_database_url(
        "postgres://bot:pw@db/bot?sslmode=require&connect_timeout=5&command_timeout=30"
        "&statement_cache_size=0&direct_tls=false&application_name=bot&search_path=s1"
        "&options=-c%20statement_timeout%3D5000&sslrootcert=/ca.pem&sslcert=/c.pem"
        "&prepared_statement_cache_size=10"
    )
    kept, connect_args = split_asyncpg_options(url)
    assert dict(kept.query) == {"ssl": "require", "prepared_statement_cache_size": "10"}
    assert connect_args["timeout"] == 5.0
    assert connect_args["command_timeout"] == 30.0
    assert connect_args["statement_cache_size"] == 0
    assert connect_args["direct_tls"] is False
    assert connect_args["server_settings"] == {
        "application_name": "bot",
        "search_path": "s1",
        "options": "-c statement_timeout=5000",
    }
    assert make_url(connect_args["dsn"]).query == {"sslrootcert": "/ca.pem", "sslcert": "/c.pem"}


def test_create_engine_accepts_pasted_forms(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/x.db")
    assert engine.url.drivername == "sqlite+aiosqlite"
    pg = create_engine("postgres://u:p@localhost/db?sslmode=disable")
    assert pg.url.drivername == "postgresql+asyncpg"
    assert pg.dialect.create_connect_args(pg.url)[1]["ssl"] == "disable"
