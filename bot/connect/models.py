"""Pydantic models of the JSON Posit Connect sends back.

Parsing is lenient where Connect is (zero or null times for people without an account, empty
emails when `Server.HideEmailAddresses` is on), strict where the bot depends on a field.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _ConnectModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _blank_if_none(value: object) -> object:
    return "" if value is None else value


class RemoteUser(_ConnectModel):
    """One result of `GET /v1/users/remote`: a directory entry, with or without an account."""

    guid: str | None = None
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    user_role: str | None = None
    # A credential: never shown in a repr, a log line or an error message.
    temp_ticket: str = Field(default="", repr=False)

    _blank = field_validator("first_name", "last_name", "email", mode="before")(_blank_if_none)

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

    _blank = field_validator("first_name", "last_name", "email", mode="before")(_blank_if_none)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ConnectGroup(_ConnectModel):
    guid: str
    name: str


class ServerSettings(_ConnectModel):
    """The parts of `GET /__api__/server_settings` the bot reads (not in the public spec)."""

    version: str = ""
    authentication_name: str = Field(default="", alias="authentication_name")
    authentication_provider: str = ""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    @property
    def provider(self) -> str:
        return self.authentication_provider or self.authentication_name or "unknown"
