"""The audit page's answers to bad input on both databases: control characters in any parameter
are a 400 (PostgreSQL refuses NUL in text; it must not become a 503 there), and a CSV export
that cannot be read fails before its headers are sent."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.store.audit_queries import AuditRecord
from tests.support.audit_data import AUDITOR, audit_clock, credentials, seed
from tests.support.bot_under_test import BotUnderTest, make_settings, start_bot
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.store_backends import BACKENDS, postgres_schema


@contextlib.asynccontextmanager
async def database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        async with postgres_schema() as url:
            yield url


@pytest.fixture(params=BACKENDS)
async def audit_bot(
    request: pytest.FixtureRequest, fake_slack: FakeSlack, fake_connect: FakeConnect, tmp_path
) -> AsyncIterator[BotUnderTest]:
    async with database(request.param, tmp_path) as url:
        settings = make_settings(
            fake_slack, fake_connect, url, trust_connect_credentials=True, audit_users=[AUDITOR]
        )
        bot = await start_bot(settings, fake_slack, fake_connect, clock=audit_clock)
        try:
            await seed(bot.runtime.store)
            yield bot
        finally:
            await bot.stop()


@pytest.mark.parametrize(
    "params",
    [
        {"q": "ama\x00ra"},
        {"q": "\x00"},
        {"q": "amara\x1b[31m"},
        {"q": "line\nbreak"},
        {"q": "del\x7f"},
        {"state": "pending\x00"},
        {"page": "1\x00"},
        {"format": "json\x00"},
        {"unknown\x00name": "x"},
        {"other": "\x00"},
    ],
)
async def test_control_characters_in_any_parameter_are_400(
    audit_bot: BotUnderTest, params: dict[str, str]
) -> None:
    for accept, media in (
        ("application/json", "application/json"),
        ("text/html", "text/html"),
        ("text/csv", "text/plain"),
    ):
        response = await audit_bot.http.get(
            "/requests", params=params, headers={**credentials(AUDITOR), "Accept": accept}
        )
        assert response.status_code == 400, (accept, response.status_code, response.text)
        assert response.headers["content-type"].startswith(media)
        if media == "application/json":
            assert "control characters" in response.json()["error"]


async def test_ordinary_searches_still_work(audit_bot: BotUnderTest) -> None:
    response = await audit_bot.http.get(
        "/requests",
        params={"q": "Ångström"},
        headers={**credentials(AUDITOR), "Accept": "application/json"},
    )
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["requests"]] == ["r5-expired"]


async def test_a_csv_export_that_cannot_be_read_fails_before_its_headers(
    audit_bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreadable(*args: Any, **kwargs: Any) -> AsyncIterator[AuditRecord]:
        raise OSError("database is gone")
        yield  # pragma: no cover - makes this an async generator

    monkeypatch.setattr("bot.web.visitors.iter_requests", unreadable)
    response = await audit_bot.http.get(
        "/requests", params={"format": "csv"}, headers=credentials(AUDITOR)
    )
    assert response.status_code == 503
    assert "content-disposition" not in response.headers
    assert response.text == "The request history cannot be read right now.\n"


async def test_an_empty_csv_export_is_just_the_header(audit_bot: BotUnderTest) -> None:
    response = await audit_bot.http.get(
        "/requests",
        params={"format": "csv", "q": "nobody-matches-this"},
        headers=credentials(AUDITOR),
    )
    assert response.status_code == 200
    assert response.text.removeprefix("\ufeff").count("\n") == 1
