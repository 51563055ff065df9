"""Configuration: read once, validated, secrets never echoed."""

from __future__ import annotations

import pytest

from bot.settings import ConfigurationError, Settings, isolate_from_bolt_environment

REQUIRED = {
    "SLACK_BOT_TOKEN": "xoxb-secret-token-value",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "SLACK_APPROVER_CHANNEL": "C0123ABCD",
    "CONNECT_SERVER": "https://connect.example.com",
    "CONNECT_API_KEY": "connect-api-key-value",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in (*REQUIRED, "DATABASE_URL", "REDIS_URL", "SLACK_API_URL", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_defaults(env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url == "sqlite+aiosqlite:///./connect-user-bot.db"
    assert settings.redis_url is None
    assert settings.port == 3000
    assert settings.connect_server == "https://connect.example.com/"
    assert "xoxb-secret" not in repr(settings)
    assert "connect-api-key-value" not in str(settings)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("https://connect.example.com", "https://connect.example.com/"),
        ("https://connect.example.com/", "https://connect.example.com/"),
        ("https://host/rsc", "https://host/rsc/"),
        ("https://host/rsc/", "https://host/rsc/"),
    ],
)
def test_connect_server_forms(env: pytest.MonkeyPatch, raw: str, normalised: str) -> None:
    env.setenv("CONNECT_SERVER", raw)
    assert Settings.from_env().connect_server == normalised


@pytest.mark.parametrize(
    ("raw", "driver"),
    [
        ("sqlite:///./bot.db", "sqlite+aiosqlite:///./bot.db"),
        (
            "postgres://u:p@db.example.com:5432/bot",
            "postgresql+asyncpg://u:p@db.example.com:5432/bot",
        ),
        (
            "postgresql://u:p@db:5432/bot?sslmode=require",
            "postgresql+asyncpg://u:p@db:5432/bot?ssl=require",
        ),
    ],
)
def test_database_url_forms(env: pytest.MonkeyPatch, raw: str, driver: str) -> None:
    env.setenv("DATABASE_URL", raw)
    assert Settings.from_env().database_url == driver


def test_missing_variables_are_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("SLACK_BOT_TOKEN")
    env.delenv("CONNECT_API_KEY")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert "SLACK_BOT_TOKEN is not set" in message
    assert "CONNECT_API_KEY (or BOT_CONNECT_API_KEY, which wins over it) is not set" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SLACK_APPROVER_CHANNEL", "#approvers-secret-value"),
        ("CONNECT_SERVER", "connect.example.com/secret-value"),
        ("PORT", "not-a-port-secret-value"),
        ("DATABASE_URL", "mysql://user:hunter2-secret-value@host/db"),
        ("REDIS_URL", "http://:hunter2-secret-value@host"),
    ],
)
def test_malformed_values_are_named_but_never_echoed(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert name in message
    assert "secret-value" not in message
    assert "hunter2" not in message


def test_rediss_url_is_accepted(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", "rediss://default:pw@cache.example.com:6380/0")
    assert Settings.from_env().redis_url is not None


def test_bolt_environment_is_isolated() -> None:
    environ = {
        "SLACK_CLIENT_ID": "1",
        "SLACK_CLIENT_SECRET": "2",
        "PATH": "/bin",
        "SLACK_BOT_TOKEN": "x",
    }
    removed = isolate_from_bolt_environment(environ)
    assert sorted(removed) == ["SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"]
    assert environ == {"PATH": "/bin"}


def test_metrics_are_off_by_default_and_the_token_is_a_secret(env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    assert settings.metrics_enabled is False and settings.metrics_token is None
    env.setenv("METRICS_ENABLED", "true")
    env.setenv("METRICS_TOKEN", " scrape-token-4242 ")
    settings = Settings.from_env()
    assert settings.metrics_enabled is True
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == "scrape-token-4242"
    assert "scrape-token-4242" not in repr(settings)
    env.setenv("METRICS_TOKEN", "")  # an empty line in .env: no token
    assert Settings.from_env().metrics_token is None
    env.setenv("METRICS_TOKEN", "...")
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN still holds the example value"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("short-token", "METRICS_TOKEN: is too short: use at least 16 characters"),
        ("fifteen-chars15", "METRICS_TOKEN: is too short"),
        ("a token with spaces inside", "METRICS_TOKEN: must be printable ASCII"),
        ("jeton-très-secret-4242", "METRICS_TOKEN: must be printable ASCII"),
        ("tab\tseparated-token-4242", "METRICS_TOKEN: must be printable ASCII"),
    ],
)
def test_a_weak_or_odd_metrics_token_is_refused_by_name(
    env: pytest.MonkeyPatch, token: str, problem: str
) -> None:
    env.setenv("METRICS_TOKEN", token)
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env()
    assert problem in str(refused.value)
    assert token not in str(refused.value)


def test_a_sixteen_character_metrics_token_is_enough(env: pytest.MonkeyPatch) -> None:
    env.setenv("METRICS_TOKEN", "0123456789abcdef")
    token = Settings.from_env().metrics_token
    assert token is not None and token.get_secret_value() == "0123456789abcdef"


def test_the_metrics_token_leaves_the_environment_once_read() -> None:
    environ = {"METRICS_TOKEN": "scrape-token-4242", "PATH": "/bin"}
    assert isolate_from_bolt_environment(environ) == []
    assert environ == {"PATH": "/bin"}


def test_audit_lists_are_comma_separated(env: pytest.MonkeyPatch) -> None:
    env.setenv("AUDIT_USERS", "alice, bob ,,carol")
    env.setenv("AUDIT_GROUPS", "")
    settings = Settings.from_env()
    assert settings.audit_users == ["alice", "bob", "carol"]
    assert settings.audit_groups == []
    assert settings.trust_connect_credentials is False


def test_bot_specific_connect_variables_win(env: pytest.MonkeyPatch) -> None:
    # On Connect, CONNECT_SERVER/CONNECT_API_KEY may be the ones Connect injects for the publisher.
    env.setenv("BOT_CONNECT_API_KEY", "dedicated-bot-key")
    env.setenv("BOT_CONNECT_SERVER", "https://connect.internal/")
    settings = Settings.from_env()
    assert settings.connect_api_key.get_secret_value() == "dedicated-bot-key"
    assert settings.connect_server == "https://connect.internal/"


def test_missing_connect_key_names_the_usual_variable(env: pytest.MonkeyPatch) -> None:
    env.delenv("CONNECT_API_KEY")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    assert "  - CONNECT_API_KEY (or BOT_CONNECT_API_KEY, which wins over it) is not set" in str(
        caught.value
    )


def test_lease_must_outlast_two_connect_timeouts(env: pytest.MonkeyPatch) -> None:
    env.setenv("CONNECT_TIMEOUT", "10")
    env.setenv("LEASE_SECONDS", "29")
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env()
    message = str(refused.value)
    assert "LEASE_SECONDS" in message and "CONNECT_TIMEOUT" in message and "30" in message
    env.setenv("LEASE_SECONDS", "30")
    assert Settings.from_env().lease_seconds == 30


def test_a_long_connect_timeout_needs_a_longer_lease(env: pytest.MonkeyPatch) -> None:
    env.delenv("LEASE_SECONDS", raising=False)
    env.setenv("CONNECT_TIMEOUT", "60")  # the default lease (120 s) is too short for it
    with pytest.raises(ConfigurationError, match=r"LEASE_SECONDS.*CONNECT_TIMEOUT"):
        Settings.from_env()
    env.setenv("LEASE_SECONDS", "130")
    assert Settings.from_env().connect_timeout == 60


def test_requestable_roles(env: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().requestable_roles == ("viewer", "publisher")
    env.setenv("REQUESTABLE_ROLES", " Administrator,publisher, ")
    assert Settings.from_env().requestable_roles == ("publisher", "administrator"), "lowest first"


@pytest.mark.parametrize("value", ["owner", "viewer,admin", " , "])
def test_an_unknown_requestable_role_is_named(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("REQUESTABLE_ROLES", value)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    assert "REQUESTABLE_ROLES" in str(caught.value)
    assert "viewer, publisher, administrator" in str(caught.value)


def test_approver_usergroups_are_ids(env: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().slack_approver_usergroup is None
    env.setenv("SLACK_APPROVER_USERGROUP", " S0123ABCD ")
    env.setenv("SLACK_ADMIN_APPROVER_USERGROUP", "")
    settings = Settings.from_env()
    assert settings.slack_approver_usergroup == "S0123ABCD"
    assert settings.slack_admin_approver_usergroup is None
    env.setenv("SLACK_ADMIN_APPROVER_USERGROUP", "@connect-admins")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    assert "SLACK_ADMIN_APPROVER_USERGROUP" in str(caught.value) and "S0123ABCD" in str(
        caught.value
    )


def test_escalation_needs_its_channel(env: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().escalate_after_hours is None
    env.setenv("ESCALATE_AFTER_HOURS", "0.5")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    assert "SLACK_ESCALATION_CHANNEL" in str(caught.value)
    env.setenv("SLACK_ESCALATION_CHANNEL", "C0ESCALATE")
    settings = Settings.from_env()
    assert (settings.escalate_after_hours, settings.slack_escalation_channel) == (0.5, "C0ESCALATE")


@pytest.mark.parametrize(
    ("channel", "hours", "named"),
    [("", "1", "is not set"), ("C0ESCALATE", "200", "must be shorter than REQUEST_EXPIRY_HOURS")],
)
def test_an_escalation_that_could_never_happen_is_refused(
    env: pytest.MonkeyPatch, channel: str, hours: str, named: str
) -> None:
    env.setenv("ESCALATE_AFTER_HOURS", hours)
    env.setenv("SLACK_ESCALATION_CHANNEL", channel)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    assert "SLACK_ESCALATION_CHANNEL" in str(caught.value) and named in str(caught.value)
