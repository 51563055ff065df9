"""The bot through its entrypoints, as people start it: the console script in a subprocess (with
the `.env` it reads), and `bot.asgi:app`'s ASGI lifespan with the environment Posit Connect
would give it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from bot.asgi import LazyApp
from tests.support.bot_under_test import APPROVER_CHANNEL, BOT_TOKEN, SIGNING_SECRET
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack


def run_bot(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    """The bot as `make run` starts it, in `cwd` (where its .env is), with a clean environment."""
    full_env = {"PATH": os.environ["PATH"], "HOME": str(cwd), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def env_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / ".env").write_text(text, encoding="utf-8")
    return tmp_path


def working_env(**changes: str) -> str:
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APPROVER_CHANNEL": APPROVER_CHANNEL,
        "CONNECT_SERVER": "http://127.0.0.1:9/",
        "CONNECT_API_KEY": "first-run-connect-key",
        "DATABASE_URL": "sqlite:///./first-run.db",
        **changes,
    }
    return "".join(f"{name}={value}\n" for name, value in values.items())


async def lifespan_startup(app: LazyApp) -> dict:
    """Drive the ASGI lifespan startup by hand; returns the app's answer."""
    sent: list[dict] = []
    messages = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})

    async def send(message: dict) -> None:
        sent.append(message)

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send)
    )
    for _ in range(500):
        if sent:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return sent[0]


def set_bot_environment(
    monkeypatch, slack: FakeSlack, connect: FakeConnect, database_url: str
) -> None:
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "SLACK_APPROVER_CHANNEL": APPROVER_CHANNEL,
        "CONNECT_SERVER": connect.url,
        "CONNECT_API_KEY": connect.api_key,
        "CONNECT_TIMEOUT": "2",
        "DATABASE_URL": database_url,
        "TRUST_CONNECT_CREDENTIALS": "true",
        "AUDIT_USERS": "auditor, someone-else",
        "LOG_FORMAT": "json",
        "SHUTDOWN_GRACE_SECONDS": "2",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
