"""Fixtures: the fake Slack and fake Connect servers on free loopback ports, the settings that
point the bot at them, the bot itself (tests/support/bot_under_test.py), an environment without
the bot's variables, and the log guard that checks every log record of every test for secrets
(tests/support/log_guard.py)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
    OUTSIDER,
    REQUESTER,
    BotUnderTest,
    make_settings,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.log_guard import no_secrets_in_logs  # noqa: F401  (autouse: every test is checked)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    for user in (REQUESTER, APPROVER, APPROVER_2, OUTSIDER):
        slack.add_user(user, email=f"{user.lower()}@example.com", real_name=user.title())
    # Private, as the approver channel must be (a public one is refused at start).
    slack.add_channel(
        APPROVER_CHANNEL,
        name="approvers",
        is_private=True,
        members=["U0BOT", APPROVER, APPROVER_2],
    )
    try:
        yield slack
    finally:
        slack.stop()


@pytest.fixture
def fake_connect() -> Iterator[FakeConnect]:
    connect = FakeConnect().start()
    connect.add_directory_user("julie1", "Julie", "Goolly", "julie1@example.com")
    connect.add_directory_user("julie2", "Julie", "Jolly", "julie2@example.com")
    connect.add_local_user("julie1", "Julie", "Goolly", "julie1@example.com")
    try:
        yield connect
    finally:
        connect.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def settings(fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str) -> Settings:
    return make_settings(fake_slack, fake_connect, database_url)


@pytest.fixture
async def bot(
    settings: Settings, fake_slack: FakeSlack, fake_connect: FakeConnect
) -> AsyncIterator[BotUnderTest]:
    running = await start_bot(settings, fake_slack, fake_connect)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await running.stop()


@pytest.fixture
def clean_environment(monkeypatch, tmp_path: Path) -> Iterator[None]:
    """No bot variables and no .env; the root logger restored afterwards (the entrypoint
    configures logging as production does)."""
    import os

    for name in list(os.environ):
        if name.startswith(("SLACK_", "CONNECT_", "DATABASE_", "REDIS_", "AUDIT_", "TRUST_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
