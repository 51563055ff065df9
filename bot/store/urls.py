"""Turn the database URLs people paste into ones the async drivers accept.

Operators copy URLs from Heroku (`postgres://`), from libpq docs (`?sslmode=require`), or from
sync SQLAlchemy setups (`postgresql+psycopg2://`). The bot only runs on aiosqlite and asyncpg, so
everything is mapped onto those two, and anything we cannot honour fails at startup with a message
that names the accepted forms, never at the first query, and never with the password in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./connect-user-bot.db"
MEMORY_DATABASE_URL = "sqlite+aiosqlite:///:memory:"

ACCEPTED_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite+aiosqlite:///path.db, "
    "sqlite:// or :memory: (in-memory), a bare path ending in .db/.sqlite/.sqlite3, "
    "postgres://user:pass@host:5432/db, postgresql://..., postgresql+psycopg2://..., "
    "postgresql+psycopg://..., postgresql+asyncpg://..."
)

_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"})
_POSTGRES_DRIVERS = frozenset(
    {
        f"{scheme}{driver}"
        for scheme in ("postgres", "postgresql")
        for driver in ("", "+psycopg2", "+psycopg", "+asyncpg", "+pg8000")
    }
)
_BARE_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")

# libpq's sslmode values are exactly the strings asyncpg's `ssl=` argument accepts.
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
# JDBC-style and boolean spellings people also paste.
_SSL_ALIASES = {
    "true": "require",
    "1": "require",
    "yes": "require",
    "on": "require",
    "false": "disable",
    "0": "disable",
    "no": "disable",
    "off": "disable",
}

# asyncpg.connect() keyword arguments that are fine as strings; SQLAlchemy's asyncpg dialect passes
# URL query parameters straight through as keyword arguments.
_ASYNCPG_STRING_ARGS = frozenset(
    {
        "ssl",
        "host",
        "port",
        "user",
        "password",
        "database",
        "passfile",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        "service",
        "servicefile",
        "prepared_statement_cache_size",  # SQLAlchemy's own option; it coerces the int itself
    }
)
# asyncpg.connect() keyword arguments that must not arrive as strings (asyncpg would crash on
# `"10" > 0` deep inside connect); `create_engine` moves them into typed connect_args.
_ASYNCPG_FLOAT_ARGS = frozenset({"timeout", "command_timeout"})
_ASYNCPG_INT_ARGS = frozenset(
    {"statement_cache_size", "max_cached_statement_lifetime", "max_cacheable_statement_size"}
)
_ASYNCPG_BOOL_ARGS = frozenset({"direct_tls"})
# libpq's certificate options: asyncpg only reads them from a DSN (or PGSSL* variables), not as
# keyword arguments, so `create_engine` hands them over through asyncpg's `dsn=` argument.
_ASYNCPG_DSN_ONLY_ARGS = frozenset(
    {
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "sslnegotiation",
    }
)
# libpq client-side knobs asyncpg has no equivalent for and that do not weaken security: dropping
# them changes tuning, not who we talk to or how safely.
_LIBPQ_DROPPED = frozenset(
    {
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "load_balance_hosts",
        "sslcompression",
        "sslsni",
    }
)
# Dropped unless they demand something asyncpg cannot do; then refusing is the safe answer.
_LIBPQ_DROPPED_UNLESS_REQUIRED = frozenset({"channel_binding", "gssencmode", "sslcertmode"})
# libpq options that change where or how we connect and that asyncpg cannot honour.
_LIBPQ_REJECTED = frozenset({"hostaddr", "requirepeer", "require_auth", "replication"})

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# Greedy up to the last "@": over-masking a malformed URL is the safe direction.
_USERINFO_PASSWORD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*:)(.*)@")
_QUERY_PASSWORD_RE = re.compile(r"(?i)((?:^|[?&])(?:ssl)?password=)[^&#]*")
_KEYWORD_PASSWORD_RE = re.compile(r"(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_MASK = "***"


def redact_url(url: str | URL | None) -> str:
    """The URL with every password masked, for logs and error messages."""
    if url is None:
        return ""
    if isinstance(url, URL):
        return _mask_query_passwords(url.render_as_string(hide_password=True))
    text = str(url)
    if "://" in text:
        try:
            parsed = make_url(text)
        except (ArgumentError, ValueError):
            pass
        else:
            return _mask_query_passwords(parsed.render_as_string(hide_password=True))
    text = _USERINFO_PASSWORD_RE.sub(rf"\g<1>{_MASK}@", text)
    text = _mask_query_passwords(text)
    return _KEYWORD_PASSWORD_RE.sub(rf"\g<1>{_MASK}", text)


def _mask_query_passwords(text: str) -> str:
    return _QUERY_PASSWORD_RE.sub(rf"\g<1>{_MASK}", text)


def normalize_database_url(raw: str | None) -> str:
    """Map a pasted database URL onto `sqlite+aiosqlite://` or `postgresql+asyncpg://`.

    Raises ValueError (with the password masked) for anything the bot cannot use.
    """
    text = _strip_pasting_noise(raw)
    if not text:
        return DEFAULT_DATABASE_URL
    if text == ":memory:":
        return MEMORY_DATABASE_URL

    match = _SCHEME_RE.match(text)
    if match is None:
        if text.lower().endswith(_BARE_SQLITE_SUFFIXES):
            return _render_sqlite(text, {})
        raise ValueError(
            f"unsupported database URL {redact_url(text)!r}: expected one of {ACCEPTED_FORMS}"
        )

    driver = match.group(1).lower()
    if driver not in _SQLITE_DRIVERS and driver not in _POSTGRES_DRIVERS:
        raise ValueError(
            f"unsupported database URL scheme {match.group(1)!r} in {redact_url(text)!r}: "
            f"expected one of {ACCEPTED_FORMS}"
        )
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ValueError(
            f"cannot parse database URL {redact_url(text)!r}: expected one of {ACCEPTED_FORMS}"
        ) from None
    if url.host and "@" in url.host:
        # SQLAlchemy ends the password at its first '@': the rest would become the host, and be
        # shown wherever the URL is, password mask or not. Nothing of it is repeated here.
        raise ValueError(
            "the database URL's password holds a raw '@': percent-encode it as %40 (and % as %25)"
        )

    if driver in _SQLITE_DRIVERS:
        return _normalize_sqlite(url)
    return _normalize_postgres(url).render_as_string(hide_password=False)


def _strip_pasting_noise(raw: str | None) -> str:
    text = (raw or "").strip()
    # Values copied out of shell snippets or .env files keep their quotes.
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text


def _normalize_sqlite(url: URL) -> str:
    if url.host or url.username or url.password or url.port:
        raise ValueError(
            f"SQLite URLs take no host or credentials: {redact_url(url)!r}; "
            "use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    database = url.database or ""
    if database in ("", ":memory:"):
        # SQLAlchemy's own convention: `sqlite://` is an in-memory database.
        return MEMORY_DATABASE_URL if not url.query else _render_sqlite(":memory:", url.query)
    return _render_sqlite(database, url.query)


def _render_sqlite(database: str, query: Mapping[str, Any]) -> str:
    return URL.create("sqlite+aiosqlite", database=database, query=query).render_as_string(
        hide_password=False
    )


def _normalize_postgres(url: URL) -> URL:
    params = {
        key: (value[-1] if isinstance(value, tuple) else value) for key, value in url.query.items()
    }
    out: dict[str, str] = {}

    ssl_values = {
        _ssl_mode(name, params.pop(name)) for name in ("sslmode", "ssl") if name in params
    }
    if len(ssl_values) > 1:
        raise ValueError(
            f"conflicting sslmode/ssl values {sorted(ssl_values)} in {redact_url(url)!r}"
        )
    if ssl_values:
        out["ssl"] = ssl_values.pop()

    if "connect_timeout" in params:
        value = params.pop("connect_timeout")
        seconds = _number("connect_timeout", value, float, allow_zero=True)
        # libpq treats 0 (or less) as "wait forever"; asyncpg needs a number, so keep its default.
        if seconds > 0:
            params.setdefault("timeout", value)
    if "dbname" in params:
        params.setdefault("database", params.pop("dbname"))
    if "fallback_application_name" in params:
        params.setdefault("application_name", params.pop("fallback_application_name"))
    if "client_encoding" in params:
        encoding = params.pop("client_encoding")
        # asyncpg always speaks UTF-8 and refuses anything else.
        if encoding.strip("'\"").replace("-", "").lower() not in ("utf8", "unicode", "auto"):
            raise ValueError(f"client_encoding={encoding!r} is not supported: asyncpg uses UTF-8")

    for name, value in params.items():
        if name in _LIBPQ_REJECTED:
            raise ValueError(
                f"database URL parameter {name!r} is not supported by asyncpg; remove it from "
                f"{redact_url(url)!r}"
            )
        if name in _LIBPQ_DROPPED_UNLESS_REQUIRED:
            if value.lower() == "require":
                raise ValueError(
                    f"{name}=require cannot be honoured by asyncpg; remove it from "
                    f"{redact_url(url)!r} or connect another way"
                )
            continue
        if name in _LIBPQ_DROPPED:
            continue
        if name in _ASYNCPG_FLOAT_ARGS:
            _number(name, value, float)
        elif name in _ASYNCPG_INT_ARGS or name == "prepared_statement_cache_size":
            _number(name, value, int, allow_zero=True)
        elif name in _ASYNCPG_BOOL_ARGS:
            _boolean(name, value)
        out[name] = value
    return url.set(drivername="postgresql+asyncpg", query=out)


def _ssl_mode(name: str, value: str) -> str:
    mode = value.strip().lower().replace("_", "-")
    mode = _SSL_ALIASES.get(mode, mode)
    if mode not in _SSL_MODES:
        raise ValueError(
            f"{name}={value!r} is not a valid SSL mode; use one of {', '.join(sorted(_SSL_MODES))}"
        )
    return mode


def _number(
    name: str, value: str, kind: type[float] | type[int], *, allow_zero: bool = False
) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"database URL parameter {name}={value!r} must be a number") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"database URL parameter {name}={value!r} must be positive")
    return number


def _boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"database URL parameter {name}={value!r} must be true or false")


def is_memory_sqlite(url: str | URL) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def split_asyncpg_options(url: str | URL) -> tuple[URL, dict[str, Any]]:
    """Split a normalised asyncpg URL into what may stay in the URL and typed connect_args.

    SQLAlchemy forwards URL query parameters to asyncpg.connect() verbatim, as strings. That is
    right for `ssl=require` but wrong for numbers, for certificate paths (which asyncpg only reads
    from a DSN) and for server settings such as application_name (which asyncpg wants in a
    `server_settings` dict, the way its own DSN parser treats unknown parameters).
    """
    parsed = make_url(url)
    keep: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    dsn_params: dict[str, str] = {}
    server_settings: dict[str, str] = {}
    for name, raw_value in parsed.query.items():
        value = raw_value[-1] if isinstance(raw_value, tuple) else raw_value
        if name in _ASYNCPG_STRING_ARGS:
            keep[name] = value
        elif name in _ASYNCPG_FLOAT_ARGS:
            connect_args[name] = _number(name, value, float)
        elif name in _ASYNCPG_INT_ARGS:
            connect_args[name] = _number(name, value, int, allow_zero=True)
        elif name in _ASYNCPG_BOOL_ARGS:
            connect_args[name] = _boolean(name, value)
        elif name in _ASYNCPG_DSN_ONLY_ARGS:
            dsn_params[name] = value
        else:
            server_settings[name] = value
    if dsn_params:
        # Host, user, password and database still come from the keyword arguments SQLAlchemy
        # passes; asyncpg lets those win over the (host-less) DSN.
        connect_args["dsn"] = "postgresql://?" + urlencode(dsn_params)
    if server_settings:
        connect_args["server_settings"] = server_settings
    return parsed.set(query=keep), connect_args
