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
from tests.support.bot_under_test import APPROVER_CHANNEL, make_settings


async def test_check_passes_on_a_working_setup(fake_slack, fake_connect, database_url) -> None:
    out = io.StringIO()
    code = await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    report = out.getvalue()
    assert code == 0, report
    assert "connect-bot (role: administrator)" in report
    assert "LDAP" in report
    assert APPROVER_CHANNEL in report


async def test_check_does_not_warn_about_a_working_ldap_server(
    fake_slack, fake_connect, database_url
) -> None:
    out = io.StringIO()
    await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    connect_part = out.getvalue().split("Slack at")[0]
    assert "LDAP" in connect_part and "warn" not in connect_part, connect_part


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
    fake_connect.provider = "saml"
    out = io.StringIO()
    await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    report = out.getvalue()
    assert "warn" in report and "SAML" in report
    assert "no remote search" in report and "roles" in report, report
    assert "lists existing accounts" in report, report


async def test_check_prints_what_the_provider_allows(
    fake_slack, fake_connect, database_url
) -> None:
    out = io.StringIO()
    await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    assert (
        "LDAP: remote search available; roles managed by Connect; groups come from the "
        "directory (directory groups can be searched)"
    ) in out.getvalue()


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


# -- the approver channel must be a safe set of approvers --------------------------------------


async def test_check_fails_on_a_public_approver_channel(
    fake_slack, fake_connect, database_url
) -> None:
    fake_slack.add_channel(APPROVER_CHANNEL, name="approvers", is_private=False)
    out = io.StringIO()
    code = await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    report = out.getvalue()
    assert code == 1
    assert f"FAIL  The approver channel #approvers ({APPROVER_CHANNEL}) is public" in report
    assert "private" in report and "APPROVER_CHANNEL_ALLOW_PUBLIC=true" in report

    out = io.StringIO()
    settings = make_settings(
        fake_slack, fake_connect, database_url, approver_channel_allow_public=True
    )
    assert await run_checks(settings, out) == 0, out.getvalue()
    assert "warn  the approver channel #approvers" in out.getvalue()


async def test_check_reports_a_private_and_a_shared_approver_channel(
    fake_slack, fake_connect, database_url
) -> None:
    out = io.StringIO()
    assert await run_checks(make_settings(fake_slack, fake_connect, database_url), out) == 0
    assert (
        f"ok    the approver channel #approvers ({APPROVER_CHANNEL}) is private" in out.getvalue()
    )
    assert "shared with another organisation" not in out.getvalue()

    fake_slack.add_channel(APPROVER_CHANNEL, name="approvers", is_private=True, is_ext_shared=True)
    out = io.StringIO()
    assert await run_checks(make_settings(fake_slack, fake_connect, database_url), out) == 0
    report = out.getvalue()
    assert "warn  The approver channel #approvers" in report
    assert "shared with another organisation" in report and "refused" in report


@pytest.mark.parametrize("mode", ["serve", "socket"])
def test_a_public_approver_channel_stops_the_bot_from_starting(
    tmp_path, fake_slack, fake_connect, mode: str
) -> None:
    from tests.support.bot_under_test import BOT_TOKEN, SIGNING_SECRET, free_socket

    fake_slack.add_channel(APPROVER_CHANNEL, name="approvers", is_private=False)
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": "xapp-test-app-token-0000",
        "SLACK_API_URL": fake_slack.api_url,
        "SLACK_APPROVER_CHANNEL": APPROVER_CHANNEL,
        "CONNECT_SERVER": fake_connect.url,
        "CONNECT_API_KEY": fake_connect.api_key,
        "PORT": str(port),
        "HOST": "127.0.0.1",
    }
    result = run_cli(mode, env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert f"#approvers ({APPROVER_CHANNEL}) is public" in result.stderr
    assert "private" in result.stderr and "APPROVER_CHANNEL_ALLOW_PUBLIC=true" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake_slack.count("apps.connections.open") == 0, "refused before connecting"


async def test_check_warns_when_it_cannot_look_for_a_card_it_posted(
    fake_slack, fake_connect, database_url
) -> None:
    fake_slack.fail("conversations.history", error="missing_scope", times=None)
    out = io.StringIO()
    await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    report = out.getvalue()
    assert "warn" in report and "groups:history" in report and "posted twice" in report


# -- what the key can do -----------------------------------------------------------------------


async def test_check_says_what_an_administrators_key_can_do(
    fake_slack, fake_connect, database_url
) -> None:
    fake_connect.license["users"] = 50
    out = io.StringIO()
    assert await run_checks(make_settings(fake_slack, fake_connect, database_url), out) == 0
    report = out.getvalue()
    assert "ok    an administrator's key: the bot can create accounts, set and change roles" in (
        report
    )
    assert "lock and unlock accounts" in report
    assert "ok    licence seats: 2 of 50 seats in use" in report


async def test_check_warns_when_every_seat_is_taken(fake_slack, fake_connect, database_url) -> None:
    fake_connect.license["users"] = 2  # the key's owner and julie1 are active
    out = io.StringIO()
    assert await run_checks(make_settings(fake_slack, fake_connect, database_url), out) == 0
    assert "warn  licence seats: 2 of 2 seats in use" in out.getvalue()
    assert "will not be able to log in" in out.getvalue()


async def test_check_says_a_publishers_key_keeps_the_bot_to_account_creation(
    fake_slack, fake_connect, database_url
) -> None:
    fake_connect.key_role = "publisher"
    out = io.StringIO()
    code = await run_checks(make_settings(fake_slack, fake_connect, database_url), out)
    report = out.getvalue()
    assert code == 0, report
    assert "warn  a publisher's key: the bot can search the directory and create accounts only" in (
        report
    )
    assert "no role" in report and "no licence seats" in report
    assert "lock and unlock are unavailable" in report
    assert "ok    licence seats" not in report
    assert fake_connect.count("GET", "v1/users") == 0, "no count the key may not make"


async def test_check_fails_a_viewers_key(fake_slack, fake_connect, database_url) -> None:
    fake_connect.key_role = "viewer"
    out = io.StringIO()
    assert await run_checks(make_settings(fake_slack, fake_connect, database_url), out) == 1
    assert "FAIL  connect-bot is a viewer: nothing works with this key" in out.getvalue()


async def test_check_says_what_the_bot_can_do_with_groups(
    fake_slack, fake_connect, database_url
) -> None:
    out = io.StringIO()
    assert await run_checks(make_settings(fake_slack, fake_connect, database_url), out) == 0
    report = out.getvalue()
    assert "ok    directory groups can be brought into Connect" in report
    assert "ok    group membership comes from the login provider" in report

    fake_connect.provider = "google"
    fake_connect.key_role = "publisher"
    out = io.StringIO()
    assert await run_checks(make_settings(fake_slack, fake_connect, database_url), out) == 0
    report = out.getvalue()
    assert "warn  adding people to Connect groups needs an administrator's key" in report
    assert "request forms offer no groups" in report

    fake_connect.key_role = "administrator"
    out = io.StringIO()
    assert await run_checks(make_settings(fake_slack, fake_connect, database_url), out) == 0
    assert "ok    request forms offer Connect groups" in out.getvalue()
