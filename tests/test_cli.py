"""The console script: check, migrate, and the errors a newcomer meets first."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from bot.check import run_checks
from bot.store.database import create_engine
from bot.store.migrate import is_up_to_date
from tests.conftest import APPROVER_CHANNEL, make_settings


async def test_check_passes_on_a_working_setup(fake_slack, fake_connect, database_url) -> None:
    out = io.StringIO()
    code = await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    report = out.getvalue()
    assert code == 0, report
    assert "connect-bot (role: administrator)" in report
    assert "LDAP" in report
    assert APPROVER_CHANNEL in report


async def test_check_names_each_problem(fake_slack, fake_connect, database_url) -> None:
    fake_connect.authentication_name = "SAML"
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        connect_api_key="wrong-key",
        slack_approver_channel="CMISSING",
    )
    out = io.StringIO()
    code = await run_checks(settings, out)
    report = out.getvalue()
    assert code == 1
    assert "CONNECT_API_KEY" in report and "401" in report
    assert "CMISSING" in report and "channel_not_found" in report
    assert "wrong-key" not in report


async def test_check_warns_when_remote_search_cannot_work(
    fake_slack, fake_connect, database_url
) -> None:
    fake_connect.authentication_name = "SAML"
    out = io.StringIO()
    await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    assert "warn" in out.getvalue() and "SAML" in out.getvalue()


def run_cli(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ["PATH"], "HOME": str(cwd), **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_configuration_is_explained(tmp_path) -> None:
    result = run_cli("serve", env={"SLACK_BOT_TOKEN": "xoxb-leak-me"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_APPROVER_CHANNEL is not set" in result.stderr
    assert "  - CONNECT_SERVER (or BOT_CONNECT_SERVER" in result.stderr
    assert "xoxb-leak-me" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("mode", "needs"), [("serve", "SLACK_SIGNING_SECRET"), ("socket", "SLACK_APP_TOKEN")]
)
def test_each_mode_names_its_secret(tmp_path, mode: str, needs: str) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APPROVER_CHANNEL": "C0123ABCD",
        "CONNECT_SERVER": "https://connect.example.com",
        "CONNECT_API_KEY": "k",
    }
    result = run_cli(mode, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert needs in result.stderr
    assert "Traceback" not in result.stderr


async def test_migrate_command(tmp_path) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APPROVER_CHANNEL": "C0123ABCD",
        "CONNECT_SERVER": "https://connect.example.com",
        "CONNECT_API_KEY": "k",
        "DATABASE_URL": "sqlite:///./migrated.db",
    }
    result = run_cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        assert await is_up_to_date(engine)
    finally:
        await engine.dispose()
