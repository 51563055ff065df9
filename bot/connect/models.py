"""Pydantic models of the JSON Posit Connect sends back.

Parsing is lenient where Connect is (zero or null times for people without an account, empty
emails when `Server.HideEmailAddresses` is on), strict where the bot depends on a field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _ConnectModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _blank_if_none(value: object) -> object:
    return "" if value is None else value


_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>Z|z|[+-]\d{2}:?\d{2})?$"
)


def connect_time(value: object) -> datetime | None:
    """A Connect timestamp as an aware UTC datetime, or None when there is none to be had.

    Connect writes up to nanoseconds ("2023-12-05T17:24:10.123456789Z"), which Python's parser
    does not take: the fraction is cut to microseconds. Zero times ("0001-01-01T00:00:00Z", what
    Connect sends for people without an account), nulls and anything unreadable become None —
    a timestamp never makes a whole answer unreadable.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and (match := _TIMESTAMP.match(value.strip())):
        fraction = (match["fraction"] or "")[:6].ljust(6, "0")
        zone = match["zone"] or "Z"
        zone = "+00:00" if zone in ("Z", "z") else zone
        if ":" not in zone:
            zone = f"{zone[:3]}:{zone[3:]}"
        try:
            parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{zone}")
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year <= 1:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 9999 east of UTC…
        return None


class RemoteUser(_ConnectModel):
    """One result of `GET /v1/users/remote`: a directory entry, with or without an account."""

    guid: str | None = None
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    user_role: str | None = None
    locked: bool = False
    # A credential: never shown in a repr, a log line or an error message.
    temp_ticket: str = Field(default="", repr=False)

    _blank = field_validator("first_name", "last_name", "email", mode="before")(_blank_if_none)

    @field_validator("locked", mode="before")
    @classmethod
    def _unlocked_if_none(cls, value: object) -> object:
        # People without an account may carry null here: nothing to lock.
        return False if value is None else value

    @property
    def has_account(self) -> bool:
        return bool(self.guid)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class RemoteSearchResult(_ConnectModel):
    results: list[RemoteUser]
    total: int = 0
    current_page: int = 1

    @field_validator("total", mode="before")
    @classmethod
    def _total_or_zero(cls, value: object) -> object:
        return 0 if value is None else value


class ConnectUser(_ConnectModel):
    """A local Connect account (`PUT /v1/users`, `GET /v1/users`, `GET /v1/user`)."""

    guid: str
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    user_role: str | None = None
    locked: bool = False
    # When the account was created, by Connect's clock; None when Connect did not say.
    created_time: datetime | None = None
    # When the account was last active, by Connect's clock; None when never (or not said).
    active_time: datetime | None = None

    _blank = field_validator("first_name", "last_name", "email", mode="before")(_blank_if_none)
    _time = field_validator("created_time", "active_time", mode="before")(connect_time)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class UserSearchResult(_ConnectModel):
    """`GET /v1/users?prefix=`: the first page of matching accounts, and how many matched."""

    results: list[ConnectUser]
    total: int = 0

    @field_validator("total", mode="before")
    @classmethod
    def _total_or_zero(cls, value: object) -> object:
        return 0 if value is None else value


class EditedUser(_ConnectModel):
    """What `PUT /v1/users/{guid}` answers: the editable fields only (no guid, no times)."""

    username: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    user_role: str | None = None

    _blank = field_validator("first_name", "last_name", "email", mode="before")(_blank_if_none)


class ConnectGroup(_ConnectModel):
    guid: str
    name: str


class GroupSearchResult(_ConnectModel):
    """`GET /v1/groups?prefix=`: the first page of matching Connect groups."""

    results: list[ConnectGroup]
    total: int = 0

    @field_validator("total", mode="before")
    @classmethod
    def _total_or_zero(cls, value: object) -> object:
        return 0 if value is None else value


class RemoteGroup(_ConnectModel):
    """A directory group from `GET /v1/groups/remote`: `guid` null when not in Connect yet."""

    name: str
    guid: str | None = None
    temp_ticket: str = Field(default="", repr=False)


class RemoteGroupResult(_ConnectModel):
    results: list[RemoteGroup]
    total: int = 0

    @field_validator("total", mode="before")
    @classmethod
    def _total_or_zero(cls, value: object) -> object:
        return 0 if value is None else value


def _lenient_flag(value: object) -> object:
    """A flag Connect may not send (older versions), or send as text: unknown stays None."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _lenient_int(value: object) -> object:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class Authentication(_ConnectModel):
    """`server_settings` → `authentication`: what the login provider lets Connect do.

    Every flag is optional (older servers lack some): None means "Connect did not say"."""

    name: str = ""
    external_user_search: bool | None = None
    external_user_data: bool | None = None
    external_user_id: bool | None = None
    groups_enabled: bool | None = None
    external_group_search: bool | None = None
    external_group_members: bool | None = None
    external_group_id: bool | None = None
    external_group_owner: bool | None = None
    unique_usernames: bool | None = None
    name_editable_by: str | None = None
    email_editable_by: str | None = None
    role_editable_by: str | None = None

    _flags = field_validator(
        "external_user_search",
        "external_user_data",
        "external_user_id",
        "groups_enabled",
        "external_group_search",
        "external_group_members",
        "external_group_id",
        "external_group_owner",
        "unique_usernames",
        mode="before",
    )(_lenient_flag)

    @field_validator("name", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return value if isinstance(value, str) else ""

    @field_validator("name_editable_by", "email_editable_by", "role_editable_by", mode="before")
    @classmethod
    def _who(cls, value: object) -> object:
        return value if isinstance(value, str) and value else None


class License(_ConnectModel):
    """`server_settings` → `license`: the user limit (0: none) and what counts as active."""

    users: int | None = None
    user_activity_days: int | None = Field(default=None, alias="user-activity-days")
    users_grace: int | None = Field(default=None, alias="users-grace")

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    _ints = field_validator("users", "user_activity_days", "users_grace", mode="before")(
        _lenient_int
    )


class ServerSettings(_ConnectModel):
    """The parts of `GET /__api__/server_settings` the bot reads (not in the public spec, used
    by both official clients): the version, the login provider's flags and the licence."""

    version: str = ""
    authentication: Authentication | None = None
    license: License | None = None
    # Older servers name the provider at the top level.
    authentication_name: str = ""
    authentication_provider: str = ""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @field_validator("authentication", "license", mode="before")
    @classmethod
    def _object_or_none(cls, value: object) -> object:
        return value if isinstance(value, dict) else None

    @field_validator("version", "authentication_name", "authentication_provider", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return value if isinstance(value, str) else ""

    @property
    def provider(self) -> str:
        named = self.authentication.name if self.authentication else ""
        return named or self.authentication_provider or self.authentication_name or "unknown"
