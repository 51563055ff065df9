"""Configuration: the only module that reads the environment.

Read once at start (`Settings.from_env()`), validated, then passed to whatever needs it. Secrets are
`SecretStr` and validation errors never echo input values, so a misplaced token never reaches a log.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.redis_url import parse_redis_url
from bot.store.urls import normalize_database_url
from bot.workflow.approvals import parse_approvals_required
from bot.workflow.roles import parse_roles

_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")

SLACK_DEFAULT_API_URL = "https://slack.com/api/"
# What a Connect API key looks like to the client (bot.connect.client): printable ASCII, no spaces.
_API_KEY = re.compile(r"^[\x21-\x7e]+$")
# Values that only show where something goes: the examples .env.example used to ship (`xoxb-...`)
# and anything still holding an ellipsis. A copied .env that keeps one is not configured yet.
_PLACEHOLDER = re.compile(r"\.\.\.|…")
# A scrape token sent in a header: long enough not to be guessed, and only characters every
# HTTP client and proxy passes unchanged.
METRICS_TOKEN_MIN_LENGTH = 16
_METRICS_TOKEN = re.compile(r"[\x21-\x7e]+")
_REQUIRED = ("slack_bot_token", "slack_approver_channel", "connect_server", "connect_api_key")
_OPTIONAL_SECRETS = ("slack_signing_secret", "slack_app_token", "metrics_token")
# LEASE_SECONDS must be at least twice CONNECT_TIMEOUT plus this.
LEASE_MARGIN_SECONDS = 10.0


class ConfigurationError(Exception):
    """The environment does not describe a runnable bot; the message names each problem."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    slack_bot_token: SecretStr = Field(description="Bot token, xoxb-…")
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Signing secret (HTTP mode)"
    )
    slack_app_token: SecretStr | None = Field(
        default=None, description="App-level token, xapp-… (Socket Mode)"
    )
    slack_api_url: str = SLACK_DEFAULT_API_URL
    slack_approver_channel: str = Field(description="Channel ID of the approvers, e.g. C0123ABCD")
    slack_approver_usergroup: str | None = Field(
        default=None, description="Slack user group ID (S…) whose members may decide"
    )
    slack_admin_approver_usergroup: str | None = Field(
        default=None,
        description="Slack user group ID (S…) whose members may decide requests for Administrator",
    )
    slack_search_channel: str | None = Field(
        default=None, description="If set, only members of this channel may search"
    )
    allow_guests: bool = Field(
        default=False, description="Let guest accounts and Slack Connect users search"
    )
    # Who may decide is never read from an answer older than this (members of the approver
    # channel, the clicker's profile): a removed or deactivated approver loses the right in at
    # most this many seconds even when Slack's event about it is lost.
    approver_check_max_age_seconds: Annotated[float, Field(ge=0, le=60)] = 15.0
    # A public approver channel lets anyone in the workspace join and approve: refused at start
    # unless this says it is meant.
    approver_channel_allow_public: bool = False

    # Connect injects its own CONNECT_SERVER/CONNECT_API_KEY (the publisher's) into content it
    # hosts, and whether a value set for the content replaces them is undocumented: the BOT_*
    # names always win, so a dedicated key can be given either way.
    connect_server: str = Field(
        description="https://connect.example.com/ (a sub-path is fine)",
        validation_alias=AliasChoices("BOT_CONNECT_SERVER", "CONNECT_SERVER", "connect_server"),
    )
    connect_api_key: SecretStr = Field(
        validation_alias=AliasChoices("BOT_CONNECT_API_KEY", "CONNECT_API_KEY", "connect_api_key"),
    )
    connect_timeout: Annotated[float, Field(gt=0, le=120)] = 10.0
    search_limit: Annotated[int, Field(ge=1, le=500)] = 50

    database_url: str = ""
    redis_url: SecretStr | None = None
    search_cache_ttl: Annotated[float, Field(ge=0, le=3600)] = 30.0
    # Who may *search*: the search channel's members and the searcher's guest/organisation status.
    membership_cache_ttl: Annotated[float, Field(ge=0, le=3600)] = 60.0

    host: str = "0.0.0.0"  # noqa: S104 - a web service: the platform decides what reaches it
    port: Annotated[int, Field(ge=1, le=65535)] = 3000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: text on a terminal, else JSON
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 20.0
    # Checked against CONNECT_TIMEOUT also when left at its default.
    lease_seconds: Annotated[float, Field(ge=1, le=3600, validate_default=True)] = 120.0
    recovery_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 15.0
    cache_namespace: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")] = "connect-user-bot"
    # The in-process cache's entries at most (without REDIS_URL): its memory stays bounded.
    cache_max_entries: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000

    # -- request lifecycle (expiry, reminders) ---------------------------------------------------
    request_expiry_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 7 * 24.0
    reminder_after_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    timers_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # A request still undecided after this long is announced once in the escalation channel.
    escalate_after_hours: Annotated[float | None, Field(gt=0, le=24 * 365)] = None
    slack_escalation_channel: Annotated[str | None, Field(validate_default=True)] = None
    # `/connect-user seats` lists licensed accounts nobody used for this many days (active_time).
    inactive_after_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # The roles people may ask for, and approvers grant, through the bot (lowest first).
    requestable_roles: Annotated[tuple[str, ...], NoDecode] = ("viewer", "publisher")
    # Distinct approvals each role needs, e.g. viewer:1,publisher:1,administrator:2 (a role not
    # named needs one).
    approvals_required: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)

    # -- hosted on Posit Connect: visitor identity and the audit page ---------------------------
    # Only believe RStudio-Connect-Credentials when the app runs behind Connect: elsewhere anyone
    # could send that header.
    trust_connect_credentials: bool = False
    connect_credentials_use_guid: bool = False  # Authorization.ContentCredentialsUseGUID
    audit_users: Annotated[list[str], NoDecode] = Field(default_factory=list)
    audit_groups: Annotated[list[str], NoDecode] = Field(default_factory=list)
    audit_allow_connect_admins: bool = True

    # -- operations: Prometheus metrics ----------------------------------------------------------
    # GET /metrics serves this replica's metrics; without the setting the route does not exist.
    metrics_enabled: bool = False
    # When set, a scrape must present it (Authorization: Bearer …, or X-Metrics-Token behind a
    # proxy that uses Authorization itself, as Posit Connect does).
    metrics_token: SecretStr | None = None

    @field_validator(*_REQUIRED, mode="before")
    @classmethod
    def _required(cls, value: object) -> object:
        text = _plain(value)
        if text is not None and not text.strip():
            raise PydanticCustomError("empty", "is empty")
        if text is not None and _PLACEHOLDER.search(text):
            raise PydanticCustomError("placeholder", "still holds the example value")
        return text.strip() if text is not None else value

    @field_validator(*_OPTIONAL_SECRETS, mode="before")
    @classmethod
    def _optional_secret(cls, value: object) -> object:
        # An empty line in .env (`SLACK_SIGNING_SECRET=`) means "not set", so the mode that
        # needs it says so by name instead of running with an empty secret.
        text = _plain(value)
        if text is None:
            return value
        if not text.strip():
            return None
        if _PLACEHOLDER.search(text):
            raise PydanticCustomError("placeholder", "still holds the example value")
        return text.strip()

    @field_validator("connect_api_key")
    @classmethod
    def _connect_api_key(cls, value: SecretStr) -> SecretStr:
        if not _API_KEY.match(value.get_secret_value()):
            raise ValueError(
                "is not a Connect API key: it must be printable characters without spaces"
            )
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value()
        if len(token) < METRICS_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"is too short: use at least {METRICS_TOKEN_MIN_LENGTH} characters (e.g. the "
                "output of `openssl rand -hex 32`)"
            )
        if not _METRICS_TOKEN.fullmatch(token):
            raise ValueError("must be printable ASCII characters without spaces")
        return value

    @field_validator("audit_users", "audit_groups", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("slack_approver_usergroup", "slack_admin_approver_usergroup")
    @classmethod
    def _usergroup_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not _USERGROUP_ID.match(value):
            raise ValueError(
                "must be a user group ID like S0123ABCD (the group's profile in Slack → ⋯ → Copy "
                "group ID), not its @handle"
            )
        return value

    @field_validator("slack_escalation_channel", mode="after")
    @classmethod
    def _escalation_needs_a_channel(cls, value: str | None, info: ValidationInfo) -> str | None:
        hours = info.data.get("escalate_after_hours")
        if hours is None:
            return value
        if not value or not value.strip():
            raise ValueError(
                "is not set, but ESCALATE_AFTER_HOURS is: set it to the channel ID (C…) where "
                "requests nobody decided are announced"
            )
        expiry = info.data.get("request_expiry_hours")
        if expiry is not None and hours >= expiry:
            raise ValueError(
                f"would never be used: ESCALATE_AFTER_HOURS ({hours:g}) must be shorter than "
                f"REQUEST_EXPIRY_HOURS ({expiry:g}), or requests expire before they escalate"
            )
        return value

    @field_validator("requestable_roles", mode="before")
    @classmethod
    def _roles(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return parse_roles(str(part) for part in value)
        return value

    @field_validator("approvals_required", mode="before")
    @classmethod
    def _approvals(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_approvals_required(value)
        return value

    @field_validator("slack_approver_channel", "slack_search_channel", "slack_escalation_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip()
        if not _CHANNEL_ID.match(value):
            raise ValueError(
                "must be a channel ID like C0123ABCD (right-click the channel → View channel "
                "details → the ID at the bottom), not a channel name"
            )
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        value = value.strip() or SLACK_DEFAULT_API_URL
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("connect_server")
    @classmethod
    def _connect_server(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                "must be the URL of the Connect server, e.g. https://connect.example.com/"
            )
        if value.rstrip("/").endswith("/__api__"):
            raise ValueError("give the server's URL without /__api__")
        # What the Connect client refuses, refused here by name rather than by a traceback.
        parts = urlsplit(value)
        if "@" in parts.netloc:
            raise ValueError("must not contain a user name or password (the API key is separate)")
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("must not contain a query (?…) or fragment (#…)")
        return value.rstrip("/") + "/"

    @field_validator("lease_seconds")
    @classmethod
    def _lease_outlasts_a_put(cls, value: float, info: ValidationInfo) -> float:
        # An approval's lease must outlast its PUT (CONNECT_TIMEOUT) and the look-ups that settle
        # an unknown outcome (about two more), with room for a late renewal: then a lease that
        # ran out means its holder is gone, and whoever takes it over needs one look-up.
        timeout = info.data.get("connect_timeout")
        if timeout is not None and value < 2 * timeout + LEASE_MARGIN_SECONDS:
            raise ValueError(
                f"must be at least twice CONNECT_TIMEOUT plus {LEASE_MARGIN_SECONDS:g} s "
                f"(CONNECT_TIMEOUT is {timeout:g} s, so at least "
                f"{2 * timeout + LEASE_MARGIN_SECONDS:g}); raise LEASE_SECONDS or lower "
                "CONNECT_TIMEOUT"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        # Parsed here as bot.cache will parse it, so a URL the cache could not use stops the
        # start with its name; the parser's messages never quote the URL.
        parse_redis_url(value.get_secret_value())
        return SecretStr(value.get_secret_value().strip())

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Read and validate the environment, or raise ConfigurationError naming each problem."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigurationError(describe_validation_error(exc)) from None


# Where a newcomer finds each value a first run asks for.
WHERE_TO_FIND = {
    "slack_bot_token": "the Bot User OAuth Token (xoxb-…) from api.slack.com/apps → your app → "
    "OAuth & Permissions",
    "slack_signing_secret": "api.slack.com/apps → your app → Basic Information → Signing Secret",
    "slack_app_token": "an app-level token (xapp-…) with connections:write, from Basic "
    "Information → App-Level Tokens",
    "slack_approver_channel": "the approver channel's ID, like C0123ABCD (channel details → "
    "About, at the bottom)",
    "connect_server": "your Connect server's URL, like https://connect.example.com/",
    "connect_api_key": "an API key of a Connect publisher or administrator (Connect → your "
    "name → API Keys)",
}


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["The bot's configuration is incomplete or wrong:"]
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"]).upper() or "(settings)"
        if name.startswith("BOT_CONNECT_"):
            usual = name.removeprefix("BOT_")
            name = f"{usual} (or {name}, which wins over it)"
        field = str(error["loc"][0]).lower().removeprefix("bot_") if error["loc"] else ""
        hint = f": {WHERE_TO_FIND[field]}" if field in WHERE_TO_FIND else ""
        if error["type"] == "missing":
            lines.append(f"  - {name} is not set{hint}")
        elif error["type"] == "empty":
            lines.append(f"  - {name} is empty{hint}")
        elif error["type"] == "placeholder":
            lines.append(f"  - {name} still holds the example value from .env.example{hint}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"  - {name}: {message}")
    return "\n".join(lines)


def _plain(value: object) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value if isinstance(value, str) else None


# Bolt reads these by itself and switches to a multi-workspace OAuth install when the first two
# are present; this bot is configured explicitly, so they must not steer it.
BOLT_ENVIRONMENT_OVERRIDES = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_VERIFICATION_TOKEN")
# Read once into Settings; after that neither a library (Bolt peeks) nor a child process needs them.
SECRETS_READ_ONCE = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "METRICS_TOKEN")


def isolate_from_bolt_environment(environ: MutableMapping[str, str]) -> list[str]:
    """Remove the variables Bolt would act on by itself; returns the names of the overrides
    removed (the secrets already read into Settings are removed silently)."""
    for name in SECRETS_READ_ONCE:
        environ.pop(name, None)
    return [name for name in BOLT_ENVIRONMENT_OVERRIDES if environ.pop(name, None) is not None]


def load_from_environment() -> tuple[Settings, list[str]]:
    """Read and validate the settings, then take out of the process environment what must not
    stay there: the Slack secrets just read, and the variables Bolt would act on by itself.

    The one place that edits `os.environ` (the entry points call it once at start). Returns the
    settings and the names of Bolt's variables that were ignored, for a warning. Raises
    ConfigurationError, before touching the environment, when the settings are incomplete.
    """
    settings = Settings.from_env()
    return settings, isolate_from_bolt_environment(os.environ)


class DatabaseSettings(BaseSettings):
    """DATABASE_URL alone, for the Alembic command line (`alembic upgrade head` run by hand),
    which needs no Slack or Connect settings."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = ""

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)
