"""A first run as a new user makes it: `cp .env.example .env`, then the console script. Every
missing, empty or example value is named in plain words with exit code 2 and no traceback, and
`check` prints its report and nothing else."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from bot.settings import ConfigurationError, Settings
from tests.support.bot_under_test import APPROVER_CHANNEL, BOT_TOKEN
from tests.support.entrypoints import env_file, run_bot, working_env

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
REQUIRED = ("SLACK_BOT_TOKEN", "SLACK_APPROVER_CHANNEL", "CONNECT_SERVER", "CONNECT_API_KEY")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "socket", "check"])
def test_a_copied_env_example_names_every_variable_to_fill_in(tmp_path: Path, command: str) -> None:
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    result = run_bot(command, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    for name in REQUIRED:
        assert f"  - {name}" in result.stderr and "is empty" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "See README.md" in result.stderr


@pytest.mark.parametrize("command", ["serve", "socket", "check"])
def test_the_old_example_values_are_named(tmp_path: Path, command: str) -> None:
    env_file(
        tmp_path,
        working_env(SLACK_BOT_TOKEN="xoxb-...", SLACK_APP_TOKEN="xapp-...", CONNECT_API_KEY="…"),
    )
    result = run_bot(command, cwd=tmp_path)
    assert result.returncode == 2
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "CONNECT_API_KEY"):
        assert f"{name}" in result.stderr
    assert result.stderr.count("still holds the example value") == 3, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        (
            "CONNECT_API_KEY",
            "",
            "CONNECT_API_KEY (or BOT_CONNECT_API_KEY, which wins over it) is empty",
        ),
        ("CONNECT_API_KEY", "   ", "is empty"),
        ("CONNECT_API_KEY", "two words", "is not a Connect API key"),
        ("SLACK_BOT_TOKEN", " ", "SLACK_BOT_TOKEN is empty"),
        ("SLACK_APPROVER_CHANNEL", "", "SLACK_APPROVER_CHANNEL is empty"),
        ("CONNECT_SERVER", "https://user:pw@connect.example.com/", "must not contain a user name"),
        ("CONNECT_SERVER", "https://connect.example.com/?x=1", "must not contain a query"),
        ("SLACK_SIGNING_SECRET", "", "SLACK_SIGNING_SECRET is not set"),
        ("SLACK_SIGNING_SECRET", "  ", "SLACK_SIGNING_SECRET is not set"),
    ],
)
def test_serve_stops_with_the_variable_named(
    tmp_path: Path, variable: str, value: str, words: str
) -> None:
    env_file(tmp_path, working_env(**{variable: value}))
    # An empty signing secret used to get past the start check: the server then ran (and this
    # would time out); an empty API key ended in a ValueError traceback.
    result = run_bot("serve", cwd=tmp_path, env={"PORT": str(free_port())}, timeout=30)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert "first-run-connect-key" not in result.stderr
    if value.strip():
        assert value not in result.stderr


def test_socket_names_its_token(tmp_path: Path) -> None:
    env_file(tmp_path, working_env(SLACK_APP_TOKEN="", SLACK_SIGNING_SECRET=""))
    result = run_bot("socket", cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN is not set" in result.stderr and "xapp-" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_value_in_env_example_is_empty_or_refused(monkeypatch, tmp_path: Path) -> None:
    """Whatever .env.example ships must never pass for a configured value."""
    monkeypatch.chdir(tmp_path)
    base = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APPROVER_CHANNEL": APPROVER_CHANNEL,
        "CONNECT_SERVER": "https://connect.internal/",
        "CONNECT_API_KEY": "a-real-looking-key",
    }
    assignments = [
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert {name for name, _ in assignments} >= set(REQUIRED)
    for name, value in assignments:
        for key in (*base, "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        for key, good in base.items():
            monkeypatch.setenv(key, good)
        monkeypatch.setenv(name, value)
        try:
            settings = Settings.from_env(_env_file=None)
        except ConfigurationError as exc:
            assert name in str(exc)
        else:
            assert getattr(settings, name.lower()) is None, f"{name}={value!r} was accepted"


def test_check_prints_its_report_and_nothing_else(tmp_path: Path, fake_slack, fake_connect) -> None:
    env_file(
        tmp_path,
        working_env(
            SLACK_API_URL=fake_slack.api_url,
            CONNECT_SERVER=fake_connect.url,
            CONNECT_API_KEY=fake_connect.api_key,
        ),
    )
    # Not a terminal: the bot's logs would be JSON here.
    result = run_bot("check", cwd=tmp_path, env={"LOG_LEVEL": "INFO"})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Connect at ")
    assert lines[-1] == "Everything the bot needs is in place."
    assert not any(line.lstrip().startswith("{") for line in lines)
    assert result.stderr == "", "library chatter (Alembic's set-up lines) or JSON logs"
