"""REDIS_URL: percent-encoded credentials work end to end (against the real Redis, with an ACL
user made for the test); a malformed URL is a named configuration error that never repeats any
part of the URL, and never a silent fallback to 127.0.0.1 without a password. DATABASE_URL: a
password that would be cut short is refused before any part of it can be shown."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import redis.asyncio as redis

from bot.asgi import LazyApp
from bot.cache.backend import build_backend
from bot.cache.keyed import KeyedCache
from bot.redis_url import RedisAddress, parse_redis_url
from bot.settings import ConfigurationError, Settings
from tests.support.bot_under_test import make_settings, start_bot
from tests.support.entrypoints import (
    env_file,
    lifespan_startup,
    run_bot,
    set_bot_environment,
    working_env,
)
from tests.support.services import require_redis, unique_namespace

# Every character a password can hold that means something in a URL.
AWKWARD_PASSWORD = "p@ss/w#rd?%:x+ é"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://cache:6380/2", RedisAddress("cache", 6380, 2)),
        ("redis://cache", RedisAddress("cache")),
        ("redis://cache/", RedisAddress("cache")),
        (
            "rediss://:pw@cache.example.com:6380/0",
            RedisAddress("cache.example.com", 6380, 0, None, "pw", True),
        ),
        (
            f"redis://bot%3Auser:{quote(AWKWARD_PASSWORD, safe='')}@10.0.0.5:6379/1",
            RedisAddress("10.0.0.5", 6379, 1, "bot:user", AWKWARD_PASSWORD),
        ),
        ("redis://u:raw@at@cache:6379/0", RedisAddress("cache", 6379, 0, "u", "raw@at")),
        ("  redis://[::1]:6379/0  ", RedisAddress("::1", 6379, 0)),
    ],
)
def test_urls_are_read_with_their_credentials_decoded(url: str, expected: RedisAddress) -> None:
    assert parse_redis_url(url) == expected


# Distinctive pieces, so a message that repeats any part of a URL is caught.
PIECES = ("s3cr", "3tPW", "cachehost7", "bob9", "notaport", "99999", "zero")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis://:s3cr#3tPW@cachehost7:6379/0", "raw '#' or '?'"),
        ("redis://:s3cr?3tPW@cachehost7:6379/0", "raw '#' or '?'"),
        ("redis://:s3cr/3tPW@cachehost7:6379/0", "database number"),
        ("redis://bob9:s3cr3tPW@cachehost7:notaport/0", "port"),
        ("redis://bob9:s3cr3tPW@cachehost7:99999/0", "port"),
        ("redis://bob9:s3cr3tPW@cachehost7:6379/zero", "database number"),
        ("redis://:s3cr3tPW@/0", "names no host"),
        ("redis://:s3cr3tPW@:6379/0", "names no host"),
        ("http://:s3cr3tPW@cachehost7:6379/0", "must start with redis:// or rediss://"),
        ("unix:///var/run/s3cr3tPW.sock", "must start with redis:// or rediss://"),
        ("cachehost7:6379", "must start with redis:// or rediss://"),
        ("redis://:s3cr 3tPW@cachehost7:6379/0", "spaces"),
        ("redis://:s3cr%FF3tPW@cachehost7:6379/0", "not valid UTF-8"),
    ],
)
def test_malformed_urls_are_refused_without_repeating_them(url: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_redis_url(url)
    message = str(caught.value)
    assert words in message
    for piece in PIECES:
        assert piece not in message, (piece, message)


def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-redis-test",
        "SLACK_APPROVER_CHANNEL": "CAPPROVERS",
        "CONNECT_SERVER": "https://connect.internal/",
        "CONNECT_API_KEY": "redis-test-key",
        "REDIS_URL": redis_url,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cr#3tPW@cachehost7:6379/0",
        "redis://:s3cr/3tPW@cachehost7:6379/0",
        # Used to fall back silently to 127.0.0.1 without the password.
        "redis://:s3cr3tPW@/0",
        "unix:///var/run/s3cr3tPW.sock",
    ],
)
def test_settings_name_a_malformed_redis_url(monkeypatch, tmp_path: Path, url: str) -> None:
    settings_env(monkeypatch, tmp_path, url)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert "REDIS_URL" in message
    assert not [piece for piece in PIECES if piece in message]


def test_serve_stops_on_a_malformed_redis_url_without_printing_it(tmp_path: Path) -> None:
    env_file(tmp_path, working_env(REDIS_URL="redis://:s3cr#3tPW@cachehost7:6379/0"))
    result = run_bot("serve", cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not [piece for piece in PIECES if piece in result.stderr + result.stdout]


async def test_hosted_startup_failure_names_redis_url_without_any_part_of_it(
    clean_environment, monkeypatch, fake_slack, fake_connect, tmp_path: Path
) -> None:
    set_bot_environment(monkeypatch, fake_slack, fake_connect, f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.setenv("REDIS_URL", "redis://:s3cr#3tPW@cachehost7:6379/0")
    answer = await lifespan_startup(LazyApp())
    assert answer["type"] == "lifespan.startup.failed"
    assert "REDIS_URL" in answer["message"]
    assert not [piece for piece in PIECES if piece in answer["message"]]


@pytest.fixture
async def acl_user() -> AsyncIterator[tuple[str, str, str]]:
    """A Redis ACL user with an awkward password, allowed only its own key namespace; deleted
    afterwards (a shared server's requirepass is left alone)."""
    admin_url = await require_redis()
    admin = redis.from_url(admin_url)
    name = f"bot-test-{uuid.uuid4().hex[:8]}"
    namespace = unique_namespace()
    await admin.acl_setuser(
        name,
        enabled=True,
        passwords=[f"+{AWKWARD_PASSWORD}"],
        keys=[f"{namespace}:*"],
        commands=["+@all"],
    )
    try:
        yield name, namespace, admin_url
    finally:
        await admin.acl_deluser(name)
        await admin.aclose()


def url_for(admin_url: str, user: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    return (
        f"redis://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{parts.port or 6379}"
        f"{parts.path or '/0'}"
    )


async def test_a_percent_encoded_password_works_against_redis(
    acl_user: tuple[str, str, str], monkeypatch, tmp_path: Path
) -> None:
    user, namespace, admin_url = acl_user
    settings_env(monkeypatch, tmp_path, url_for(admin_url, user, AWKWARD_PASSWORD))
    settings = Settings.from_env()
    assert settings.redis_url is not None
    cache = KeyedCache(build_backend(settings.redis_url.get_secret_value(), namespace=namespace))
    calls = 0

    async def compute() -> dict:
        nonlocal calls
        calls += 1
        return {"value": 42}

    try:
        assert await cache.get_or_compute("k", compute, ttl=30) == {"value": 42}
        assert await cache.get_or_compute("k", compute, ttl=30) == {"value": 42}
        assert calls == 1, "the second read came from Redis"
    finally:
        await cache.close()
    admin = redis.from_url(admin_url)
    try:
        assert [key async for key in admin.scan_iter(f"{namespace}:*")], "stored in Redis"
    finally:
        await admin.aclose()


async def test_a_wrong_password_degrades_to_uncached_and_logs_no_part_of_the_url(
    acl_user: tuple[str, str, str], fake_slack, fake_connect, database_url, no_secrets_in_logs
) -> None:
    user, namespace, admin_url = acl_user
    wrong = url_for(admin_url, user, "not-the-password-xyz")
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        redis_url=wrong,
        cache_namespace=namespace,
        search_cache_ttl=30,
    )
    bot = await start_bot(settings, fake_slack, fake_connect)
    try:
        _, response_url = await bot.command("search julie")
        await bot.settle()
        assert "julie2" in str(await fake_slack.wait_for_response(response_url))
    finally:
        await bot.stop()
    logged = "\n".join(text for _, text in no_secrets_in_logs.texts)
    assert "cache read failed" in logged
    for part in ("not-the-password-xyz", user, quote(user, safe="")):
        assert part not in logged


def test_a_database_password_with_a_raw_at_sign_is_refused_unrepeated(
    monkeypatch, tmp_path: Path
) -> None:
    settings_env(monkeypatch, tmp_path, "")
    monkeypatch.setenv("DATABASE_URL", "postgres://bob9:s3cr@3tPW@cachehost7:5432/db")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert "DATABASE_URL" in message and "%40" in message
    assert not [piece for piece in PIECES if piece in message]
    # Percent-encoded, the same password is fine.
    monkeypatch.setenv("DATABASE_URL", "postgres://bob9:s3cr%403tPW@cachehost7:5432/db")
    assert Settings.from_env().database_url.endswith("@cachehost7:5432/db")
