"""A fake Posit Connect server for tests and benchmarks.

It speaks Connect's published 2023.09 dialect (/work/shared/connect-api.md), including where a
real server is less kind than a hand-written fake would be:

* every user record carries all eleven fields (twelve with `temp_ticket` on remote results),
  timestamps as Go writes them (up to nanoseconds, trailing zeros cut), and, by default, fields
  newer than the bot (`extra_fields`) that a client must ignore;
* people without an account (`guid` null) carry Go's zero values or nulls (`unregistered_values`);
* remote and local searches match the prefix case-insensitively on username, first and last name
  and come back sorted by similarity (exact username first), `limit`/`page_size` 1-500;
* every error the fake makes up is `{"code", "error", "payload"}` with the code, text and HTTP
  status of Connect 2023.09's published table (tests/support/connect_facts.py);
* `server_settings` reports the login provider's `authentication` flags and the `license`
  (`provider` = "ldap" | "google" | "saml" | "provider_roles", each flag overridable);
* the API key belongs to a user whose role is `key_role`; endpoints apply the published key rules.

Which code it answers where ("[?]" in connect_facts.py marks a choice no source makes):

  any endpoint        24 bad key; 2 unknown path/method; 121 a body that is not a JSON object
  GET  users/remote   12 no prefix; 25/13 limit; 22 viewer key; 132 no external_user_search;
                      83 more than `remote_search_max_results` matches
  PUT  users          12 no temp_ticket; 22 viewer key; 119 no external_user_search; 127 stale
                      ticket; 8 username taken; 64 licence full if `license_checked_on_create`
  GET  users          25/13 paging; 112 user_role; 115 account_status; 22 account_status with a
                      non-admin key
  PUT  users/{guid}   4 no such user; 112 unknown role; 23 role change the key may not make (or
                      the provider owns roles); 21 other fields it may not change; 61 the last
                      administrator; 8 username taken. Answers the five editable fields only.
  POST users/{guid}/lock  12/121 `locked`; 4; 49 non-admin key; 64 unlocking on a full licence
  GET  groups         132 groups disabled [?]; paging as users
  GET  groups/remote  as users/remote, with external_group_search
  PUT  groups         12; 22 viewer key; 119 no external_group_search; 127; 131 that directory
                      group already has a Connect group; 15 a group of that name exists
  POST groups/{guid}/members   132 groups disabled or members from the provider [?]; 4 no such
                      group; 12 no user_guid; 9 no such user; 10 a publisher key on a group its
                      owner does not own; 16 already a member; 204 done
  DELETE groups/{guid}/members/{user_guid}   as POST; 17 not a member [?]; 204 done
  GET  groups/{guid}/members   132 groups disabled, or members from the provider (LDAP)

Switches inject the failures real deployments show: slow answers (`latency`, per selector),
outages, 5xx/429/any code (`fail_next`, `refuse_next`, per selector), garbage bodies, and writes
whose outcome the client cannot know (`put_mode` for the create PUT, `write_mode(selector, mode)`
for every write: fail, hang, commit then fail/hang, or commit after a delay and answer later).

Use it in-process (`httpx.ASGITransport(app=fake.app)`, base URL `fake.asgi_url`) or on a real
loopback port (`fake.start()` / `with FakeConnect() as fake:`, base URL `fake.url`). Handlers of the
real server run on a background thread with its own event loop, so every piece of shared state is
guarded by a lock and every switch is a plain attribute read at request time.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import fnmatch
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.support.connect_facts import (
    ACCOUNT_STATUSES,
    CODE_ALREADY_MEMBER,
    CODE_BAD_JSON,
    CODE_BAD_PARAMETER,
    CODE_BAD_RANGE,
    CODE_CANNOT_CHANGE,
    CODE_GROUP_EXISTS,
    CODE_GROUP_NAME_IN_USE,
    CODE_INTERNAL,
    CODE_LAST_ADMIN,
    CODE_LICENSE_FULL,
    CODE_LOCK_NOT_PERMITTED,
    CODE_MISSING_PARAMETER,
    CODE_NO_SUCH_ENDPOINT,
    CODE_NO_SUCH_USER,
    CODE_NO_TICKETS,
    CODE_NOT_A_MEMBER,
    CODE_NOT_AUTHENTICATED,
    CODE_NOT_FOUND,
    CODE_NOT_PERMITTED,
    CODE_NOT_YOURS,
    CODE_PROVIDER_CANNOT,
    CODE_ROLE_NOT_PERMITTED,
    CODE_STALE_TICKET,
    CODE_TOO_MANY_RESULTS,
    CODE_UNKNOWN_ROLE,
    CODE_UNKNOWN_STATUS,
    CODE_USERNAME_IN_USE,
    ERROR_TABLE,
    LICENSE,
    PROVIDERS,
    ROLE_RANK,
    ROLES,
)

DEFAULT_API_KEY = "fake-connect-api-key-0123456789"

OUTAGE_MODES = (None, "refuse", "http_500", "http_503")
# commit_late: the write takes effect only after `commit_delay` seconds (a client with a shorter
# timeout has given up by then), and is answered `answer_delay` seconds after that.
PUT_MODES = ("normal", "commit_then_hang", "commit_then_500", "fail_500", "hang", "commit_late")
WRITE_MODES = PUT_MODES
# What a person without an account carries where an account would have a role and times:
# "zero" is what Go marshals for an empty value ("" and 0001-01-01T00:00:00Z), "null" is null.
UNREGISTERED_VALUES = ("zero", "null")
_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_ZERO_TIME = "0001-01-01T00:00:00Z"
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
# Sleeps shorter than this are not worth making interruptible.
_PLAIN_SLEEP_MAX = 0.5
# Remote searches issue a ticket per result; a long benchmark must not grow without bound.
_MAX_TICKETS = 200_000
_MAX_ERRORS_KEPT = 10_000
_MISSING = object()

# A selector names requests: True (all), a method ("PUT"), a path ("v1/users/remote",
# "/__api__/v1/users/remote", fnmatch patterns like "v1/users/*"), "METHOD path", or a collection
# of those.
Selector = bool | str | Collection[str] | None


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str  # e.g. "/__api__/v1/users/remote", without the sub-path
    query: dict[str, str]
    json: Any  # the parsed body, or None (no body / not JSON)
    authorized: bool


@dataclass(frozen=True)
class SentError:
    """An error answer the fake sent (`FakeConnect.errors_sent`)."""

    method: str
    path: str
    status: int
    body: Any  # the JSON body (a dict), or the text of a proxy's error page
    injected: bool  # asked for by a test (fail_next, refuse_next, an error-code switch)


@dataclass
class _Person:
    username: str
    first_name: str
    last_name: str
    email: str
    unique_id: str  # the provider's identifier (an LDAP DN, an OAuth2 subject)


@dataclass
class _Account:
    guid: str
    username: str
    first_name: str
    last_name: str
    email: str
    user_role: str
    locked: bool
    created_ns: int
    updated_ns: int
    active_ns: int | None = None  # None: never logged in
    confirmed: bool = True
    unique_id: str = ""

    def to_json(
        self, *, hide_email: bool = False, values: str = "zero", extra: bool = False
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "guid": self.guid,
            "email": "" if hide_email else self.email,
            "username": self.username,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "user_role": self.user_role,
            "created_time": _format_ns(self.created_ns),
            "updated_time": _format_ns(self.updated_ns),
            "active_time": _blank_time(values)
            if self.active_ns is None
            else _format_ns(self.active_ns),
            "confirmed": self.confirmed,
            "locked": self.locked,
        }
        if extra:
            record.update(_extra_fields(self.unique_id or self.guid))
        return record

    def editable_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "username": self.username,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "user_role": self.user_role,
        }


@dataclass
class _DirectoryGroup:
    name: str
    unique_id: str
    members: list[str]  # usernames


@dataclass
class _Group:
    guid: str
    name: str
    owner_guid: str | None
    unique_id: str | None = None  # the directory group it was created from
    members: set[str] = field(default_factory=set)  # user guids

    def to_json(self) -> dict[str, Any]:
        return {"guid": self.guid, "name": self.name, "owner_guid": self.owner_guid}


@dataclass
class _FailRule:
    selector: Selector
    status: int
    code: int | None
    remaining: int
    retry_after: float | None
    body: str | None
    message: str | None = None


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    injected: bool = False


def _now_ns() -> int:
    ns = time.time_ns()
    # Every fresh timestamp carries digits past the microsecond, the case Python's parser refuses.
    return ns + 1 if ns % 1000 == 0 else ns


def _datetime_ns(when: datetime) -> int:
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000


def _format_ns(ns: int) -> str:
    # As Go's RFC3339Nano writes them: up to nine digits, trailing zeros cut, no dot for zero.
    seconds, fraction = divmod(ns, _NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def _blank_time(values: str) -> str | None:
    return None if values == "null" else _ZERO_TIME


def _extra_fields(unique_id: str) -> dict[str, Any]:
    # Fields a newer Connect may send, or an older bot not know: the bot must ignore them.
    return {"external_id": unique_id, "future_field": {"since": "2099.01", "values": [1, None]}}


def _norm_path(path: str) -> str:
    path = path.strip().strip("/")
    if path.startswith("__api__/"):
        path = path[len("__api__/") :]
    return path


def matches(selector: Selector, method: str, path: str) -> bool:
    """Whether a request (method, path) is named by `selector` (see `Selector`)."""
    if selector is None or selector is False:
        return False
    if selector is True:
        return True
    if not isinstance(selector, str):
        return any(matches(item, method, path) for item in selector)
    text = selector.strip()
    want_method: str | None = None
    want_path: str | None = None
    if " " in text:
        want_method, want_path = text.split(None, 1)
    elif text.upper() in _HTTP_METHODS:
        want_method = text
    else:
        want_path = text
    if want_method is not None and want_method.upper() != method.upper():
        return False
    return want_path is None or fnmatch.fnmatchcase(_norm_path(path), _norm_path(want_path))


def similarity(prefix: str, username: str, *names: str) -> tuple[int, int, str, str] | None:
    """How well a record matches a search prefix, best first; None if it does not match.

    Case-insensitive on the username and each name. Exact username first (its exact case before
    another case), then usernames starting with the prefix, then an exact first or last name,
    then names starting with it; within each, the shorter (closer) field first."""
    wanted = prefix.casefold()
    user = username.casefold()
    folded = [name.casefold() for name in names if name]
    if user == wanted:
        rank, length = (0 if username == prefix else 1), len(user)
    elif user.startswith(wanted):
        rank, length = 2, len(user)
    elif wanted in folded:
        rank, length = 3, len(wanted)
    else:
        lengths = [len(name) for name in folded if name.startswith(wanted)]
        if not lengths:
            return None
        rank, length = 4, min(lengths)
    return rank, length, user, username


def _new_ticket() -> str:
    # Real tickets are opaque base64 with `+` and `/`: make sure every fake one has both, so a
    # client that puts a ticket anywhere but a JSON body breaks in tests.
    while True:
        ticket = base64.b64encode(os.urandom(48)).decode("ascii")
        if "+" in ticket and "/" in ticket:
            return ticket


def _error(code: int) -> _Reply:
    """An error the fake decided on: the published status and text, nothing made up."""
    status, message = ERROR_TABLE[code]
    return _Reply(status, {"code": code, "error": message, "payload": None})


def _injected_error(
    code: int | None, status: int | None = None, message: str | None = None
) -> _Reply:
    """An error a test asked for: the table's status and text for `code` unless given; a code
    the table does not know (or none) gets a generic text."""
    table_status, table_message = ERROR_TABLE.get(code or 0, (400, "Injected failure."))
    return _Reply(
        table_status if status is None else status,
        {"code": code, "error": table_message if message is None else message, "payload": None},
        injected=True,
    )


class _ThreadServer(uvicorn.Server):
    """uvicorn polls its exit flag every 100 ms; poll faster so stop() (and outages) are quick."""

    async def main_loop(self) -> None:
        counter = 0
        await self.on_tick(counter)
        while not self.should_exit:
            await asyncio.sleep(0.01)
            counter += 1
            if counter % 100 == 0:  # on_tick refreshes the Date header every 10th call
                await self.on_tick(0)


# Every fake made in this process: the log guard collects their secrets.
INSTANCES: list[FakeConnect] = []


class FakeConnect:
    """In-memory Connect: a directory (what remote search sees), local accounts and groups."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        sub_path: str = "",
        version: str = "2024.08.0",
        provider: str = "ldap",
        authentication_name: str | None = None,
        default_user_role: str = "viewer",
        owner_username: str = "connect-bot",
        owner_role: str = "administrator",
        host: str = "127.0.0.1",
    ) -> None:
        self.api_key = api_key
        self.sub_path = "/" + sub_path.strip("/") if sub_path.strip("/") else ""
        self.version = version
        self.default_user_role = default_user_role
        self.host = host
        # The login provider's flags, served under server_settings["authentication"] and obeyed
        # by the endpoints; `provider = ...` replaces them with a preset, tests may edit one.
        self.authentication: dict[str, Any] = {}
        self.provider = provider
        if authentication_name is not None:
            self.authentication_name = authentication_name
        # server_settings["license"]; "users" 0 = no user limit.
        self.license: dict[str, Any] = dict(LICENSE)

        # Schema switches.
        self.extra_fields = True
        self._unregistered_values = "zero"
        self.hide_emails = False  # Server.HideEmailAddresses: emails blank for non-admin keys
        # Connect checks the licence at first login, not on create; True models a server that
        # refuses the create PUT with code 64 when every seat is taken.
        self.license_checked_on_create = False
        self.remote_search_max_results: int | None = None  # more matches -> code 83

        # Fault switches: plain attributes, read on every request, settable at any time.
        self.latency: float | Mapping[str, float] = 0.0
        self.malformed: Selector = False
        self.missing_fields: Selector = False
        self.remote_search_error_code: int | None = None
        self.put_error_code: int | None = None
        self.single_use_tickets = False
        self.hang_seconds = 30.0
        self.commit_delay = 3.0  # mode "commit_late"
        self.answer_delay = 0.0
        self._put_mode = "normal"
        self._write_modes: dict[str, str] = {}
        self._outage: str | None = None

        self._lock = threading.RLock()
        self._directory: dict[str, _Person] = {}
        self._accounts: dict[str, _Account] = {}  # by guid
        self._guid_by_username: dict[str, str] = {}
        self._directory_groups: dict[str, _DirectoryGroup] = {}  # by unique id
        self._groups: dict[str, _Group] = {}  # by guid
        INSTANCES.append(self)
        self._tickets: dict[str, str] = {}  # ticket -> username
        self._group_tickets: dict[str, str] = {}  # ticket -> directory group unique id
        # Every ticket ever handed out, so tests can check none of them leaked into a log.
        self.issued_tickets: set[str] = set()
        self._fail_rules: list[_FailRule] = []
        self._calls: list[RecordedCall] = []
        self._errors: list[SentError] = []

        self._server_lock = threading.RLock()
        self._serving_wanted = False
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._port: int | None = None
        self._placeholder: socket.socket | None = None
        self._interrupt = threading.Event()

        self.owner_guid = self.add_local_user(
            owner_username, "Connect", "Bot", user_role=owner_role, in_directory=False
        )
        self._starlette = Starlette(routes=self._routes())

    # -- the server's configuration ---------------------------------------------------------

    @property
    def provider(self) -> str:
        """The preset the `authentication` flags came from (see connect_facts.PROVIDERS)."""
        return self._provider

    @provider.setter
    def provider(self, name: str) -> None:
        if name not in PROVIDERS:
            raise ValueError(f"provider must be one of {sorted(PROVIDERS)}")
        self._provider = name
        self.authentication = copy.deepcopy(PROVIDERS[name])

    @property
    def unregistered_values(self) -> str:
        """What people without an account carry for role and times: "zero" or "null"."""
        return self._unregistered_values

    @unregistered_values.setter
    def unregistered_values(self, values: str) -> None:
        if values not in UNREGISTERED_VALUES:
            raise ValueError(f"unregistered_values must be one of {UNREGISTERED_VALUES}")
        self._unregistered_values = values

    @property
    def authentication_name(self) -> str:
        """The provider's display name (`authentication.name`): changes no flag."""
        return str(self.authentication.get("name", ""))

    @authentication_name.setter
    def authentication_name(self, name: str) -> None:
        self.authentication["name"] = name

    @property
    def key_role(self) -> str:
        """The role of the user the API key belongs to (the key's rights follow it)."""
        with self._lock:
            return self._accounts[self.owner_guid].user_role

    @key_role.setter
    def key_role(self, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"key_role must be one of {ROLES}")
        with self._lock:
            self._accounts[self.owner_guid].user_role = role

    def _flag(self, name: str) -> bool:
        return bool(self.authentication.get(name))

    # -- seeding ----------------------------------------------------------------------------

    def add_directory_user(
        self, username: str, first_name: str = "", last_name: str = "", email: str | None = None
    ) -> None:
        """Someone the directory (LDAP) knows; they have no Connect account yet."""
        email = f"{username}@example.com" if email is None else email
        with self._lock:
            self._directory[username] = _Person(
                username, first_name, last_name, email, _unique_id("uid", username, "people")
            )

    def add_local_user(
        self,
        username: str,
        first_name: str = "",
        last_name: str = "",
        email: str | None = None,
        *,
        user_role: str = "viewer",
        locked: bool = False,
        in_directory: bool = True,
        guid: str | None = None,
        created_time: datetime | None = None,
        active_time: object = _MISSING,
    ) -> str:
        """An account that already exists in Connect (also in the directory, by default);
        created now unless `created_time` says when, last active now unless `active_time` says
        when (None: never logged in)."""
        if user_role not in ROLES:
            raise ValueError(f"user_role must be one of {ROLES}")
        email = f"{username}@example.com" if email is None else email
        with self._lock:
            if self._account_by_username(username) is not None:
                raise ValueError(f"{username!r} already has an account")
            person = self._directory.get(username)
            if in_directory and person is None:
                person = _Person(
                    username, first_name, last_name, email, _unique_id("uid", username, "people")
                )
                self._directory[username] = person
            now = _now_ns()
            if active_time is _MISSING:
                active_ns: int | None = now
            elif isinstance(active_time, datetime):
                active_ns = _datetime_ns(active_time)
            else:
                active_ns = None
            account = _Account(
                guid=guid or str(uuid.uuid4()),
                username=username,
                first_name=first_name,
                last_name=last_name,
                email=email,
                user_role=user_role,
                locked=locked,
                created_ns=now if created_time is None else _datetime_ns(created_time),
                updated_ns=now,
                active_ns=active_ns,
                unique_id=person.unique_id if person is not None else "",
            )
            self._store_account(account)
            return account.guid

    def add_group(
        self,
        name: str,
        guid: str | None = None,
        *,
        owner_guid: str | None = None,
        members: Iterable[str] = (),
    ) -> str:
        """A Connect group (owned by `owner_guid`, members by user guid); returns its guid."""
        with self._lock:
            group = _Group(guid or str(uuid.uuid4()), name, owner_guid, members=set(members))
            self._groups[group.guid] = group
            return group.guid

    def add_directory_group(
        self, name: str, members: Iterable[str] = (), *, unit: str = "groups"
    ) -> None:
        """A group the directory (LDAP) knows (members by username); no Connect group yet.
        Directory group names are not unique: the same name in another `unit` (an LDAP
        organisational unit) is another group."""
        unique_id = _unique_id("cn", name, unit)
        with self._lock:
            self._directory_groups[unique_id] = _DirectoryGroup(name, unique_id, list(members))

    def bring_in_directory_group(self, name: str, *, unit: str = "groups") -> str:
        """Make the Connect group of a directory group, as `PUT /v1/groups` would (members from
        the directory); returns its guid."""
        unique_id = _unique_id("cn", name, unit)
        with self._lock:
            found = self._directory_groups[unique_id]
            members = {
                guid
                for username in found.members
                if (guid := self._guid_by_username.get(username)) is not None
            }
            group = _Group(str(uuid.uuid4()), found.name, None, found.unique_id, members)
            self._groups[group.guid] = group
            return group.guid

    def get_local_user(self, username: str) -> dict[str, Any] | None:
        """The account's JSON (as Connect would send it), or None if there is none."""
        with self._lock:
            account = self._account_by_username(username)
            return None if account is None else account.to_json(values=self.unregistered_values)

    def get_group(self, guid: str) -> dict[str, Any] | None:
        """The group's JSON plus its `members` (sorted user guids), or None."""
        with self._lock:
            group = self._groups.get(guid)
            if group is None:
                return None
            return {**group.to_json(), "members": sorted(group.members)}

    @property
    def local_usernames(self) -> list[str]:
        with self._lock:
            return [a.username for a in self._accounts.values()]

    def issue_ticket(self, username: str) -> str:
        """A valid ticket for a directory user, as a remote search would hand out (not recorded)."""
        with self._lock:
            if username not in self._directory:
                raise KeyError(username)
            return self._issue_ticket_locked(username)

    def issue_group_ticket(self, name: str) -> str:
        """A valid ticket for a directory group, as a remote group search would hand out."""
        with self._lock:
            found = next((g for g in self._directory_groups.values() if g.name == name), None)
            if found is None:
                raise KeyError(name)
            return self._issue_group_ticket_locked(found.unique_id)

    def invalidate_tickets(self) -> None:
        """Every ticket issued so far becomes stale (code 127); later searches issue valid ones."""
        with self._lock:
            self._tickets.clear()
            self._group_tickets.clear()

    # -- recorded calls ---------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """A snapshot of the requests received, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_for(self, method: str | None = None, path: str | None = None) -> list[RecordedCall]:
        selector = " ".join(part for part in (method, path) if part) or True
        with self._lock:
            return [c for c in self._calls if matches(selector, c.method, c.path)]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched, e.g. `count("PUT", "v1/users")` or `count("GET")`."""
        return len(self.calls_for(method, path))

    @property
    def errors_sent(self) -> list[SentError]:
        """The error answers (status >= 400) sent so far, oldest first (the last 10,000)."""
        with self._lock:
            return list(self._errors)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()
            self._errors.clear()

    # -- fault switches ---------------------------------------------------------------------

    @property
    def put_mode(self) -> str:
        """The mode of `PUT /v1/users` (create from ticket), unless `write_mode` names it."""
        return self._put_mode

    @put_mode.setter
    def put_mode(self, mode: str) -> None:
        if mode not in PUT_MODES:
            raise ValueError(f"put_mode must be one of {PUT_MODES}")
        self._put_mode = mode

    def write_mode(self, selector: str, mode: str) -> None:
        """How the writes `selector` names behave (a mode of WRITE_MODES; "normal" undoes it).

        E.g. `write_mode("PUT v1/users/*", "commit_then_hang")`: a role change takes effect
        and its answer never comes. The first selector set that matches wins."""
        if mode not in WRITE_MODES:
            raise ValueError(f"mode must be one of {WRITE_MODES}")
        with self._lock:
            self._write_modes.pop(selector, None)
            if mode != "normal":
                self._write_modes[selector] = mode

    @property
    def outage(self) -> str | None:
        return self._outage

    @outage.setter
    def outage(self, mode: str | None) -> None:
        """Switch outages on or off.

        "refuse" stops a running server (connections refused) and keeps its port reserved;
        leaving "refuse" starts it again on the same port. In-process, "refuse" makes the app
        raise httpx.ConnectError, which ASGITransport passes to the client as-is.
        """
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage must be one of {OUTAGE_MODES}")
        with self._server_lock:
            self._outage = mode
            if not self._serving_wanted:
                return
            if mode == "refuse":
                self._halt(keep_port=True)
            elif self._server is None:
                self._launch()

    def fail_next(
        self,
        path_or_method: Selector,
        status: int,
        code: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
        body: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` before doing anything else.

        The body is Connect's error JSON with `code` (null if None) and the table's text for
        it, or `body` verbatim as text/plain (a proxy's error page). `retry_after` sets the
        Retry-After header (seconds).
        """
        with self._lock:
            self._fail_rules.append(
                _FailRule(path_or_method, status, code, times, retry_after, body)
            )

    def refuse_next(
        self,
        selector: Selector,
        code: int,
        times: int = 1,
        *,
        status: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with Connect's error `code`, with the
        published status and text (e.g. `refuse_next("PUT v1/users", 64)`). A code the table
        does not have (one from a newer Connect) needs its `status` and `message`."""
        if code not in ERROR_TABLE and (status is None or message is None):
            raise ValueError(f"code {code} is not in the 2023.09 table: give status and message")
        table_status, table_message = ERROR_TABLE.get(code, (0, ""))
        with self._lock:
            self._fail_rules.append(
                _FailRule(
                    selector,
                    table_status if status is None else status,
                    code,
                    times,
                    None,
                    None,
                    table_message if message is None else message,
                )
            )

    def reset_faults(self) -> None:
        with self._lock:
            self._fail_rules.clear()
            self._write_modes.clear()
        self.latency = 0.0
        self.malformed = False
        self.missing_fields = False
        self.remote_search_error_code = None
        self.put_error_code = None
        self.single_use_tickets = False
        self.put_mode = "normal"
        self.outage = None

    # -- serving ----------------------------------------------------------------------------

    @property
    def app(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        return self._asgi

    @property
    def asgi_url(self) -> str:
        """A base URL to pair with `httpx.ASGITransport(app=fake.app)` (host is arbitrary)."""
        return f"http://connect.test{self.sub_path}/"

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeConnect has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The server URL as CONNECT_SERVER would hold it, e.g. http://127.0.0.1:54321/rsc/."""
        return f"http://{self.host}:{self.port}{self.sub_path}/"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        """Serve on a loopback port (the previous one after a stop(), else a free one)."""
        with self._server_lock:
            self._serving_wanted = True
            if self._server is not None:
                return self
            if self._outage != "refuse":
                self._launch()
            elif self._placeholder is None:  # started during a "refuse" outage: hold a port
                self._placeholder = self._bind(self._port or 0, listen=False)
                self._port = self._placeholder.getsockname()[1]
        return self

    def stop(self) -> None:
        with self._server_lock:
            self._serving_wanted = False
            self._halt(keep_port=False)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self, port: int, *, listen: bool) -> socket.socket:
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it every keep-alive response waits ~40 ms (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            # Lets a restart take the same port while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
            if listen:
                sock.listen(1024)
        except BaseException:
            sock.close()
            raise
        return sock

    def _launch(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        sock = self._bind(self._port or 0, listen=True)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        server = _ThreadServer(config)
        self._thread_error = None
        thread = threading.Thread(
            target=self._run_server,
            args=(server, sock),
            name=f"fake-connect-{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + 5
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._halt(keep_port=False)
                raise RuntimeError("fake Connect server did not start") from self._thread_error
            time.sleep(0.002)

    def _run_server(self, server: _ThreadServer, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced by _launch; a thread has nobody else to tell
            self._thread_error = exc
        finally:
            sock.close()

    def _halt(self, *, keep_port: bool) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            self._interrupt.set()  # hanging handlers answer now, so shutdown need not wait
            server.should_exit = True
            thread.join(timeout=5)
            self._interrupt.clear()
        if self._placeholder is not None and not keep_port:
            self._placeholder.close()
            self._placeholder = None
        if keep_port and self._placeholder is None and self._port is not None:
            # Bound but not listening: connections are refused, and nobody else takes the port.
            self._placeholder = self._bind(self._port, listen=False)

    # -- request handling -------------------------------------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._outage == "refuse":
                raise httpx.ConnectError("fake Connect is refusing connections")
            if self.sub_path:
                path = scope["path"]
                if not path.startswith(self.sub_path + "/"):
                    await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
                    return
                stripped = path[len(self.sub_path) :]
                scope = {**scope, "path": stripped, "raw_path": stripped.encode()}
        await self._starlette(scope, receive, send)

    def _routes(self) -> list[Route]:
        api = "/__api__"
        routes = [
            ("GET", "/v1/users/remote", self._remote_search),
            ("GET", "/v1/users", self._list_users),
            ("PUT", "/v1/users", self._create_user),
            ("GET", "/v1/users/{guid}", self._get_user),
            ("PUT", "/v1/users/{guid}", self._update_user),
            ("POST", "/v1/users/{guid}/lock", self._lock_user),
            ("GET", "/v1/user", self._current_user),
            ("GET", "/v1/groups/remote", self._remote_group_search),
            ("GET", "/v1/groups", self._list_groups),
            ("PUT", "/v1/groups", self._create_group),
            ("GET", "/v1/groups/{guid}", self._get_group),
            ("GET", "/v1/groups/{guid}/members", self._group_members),
            ("POST", "/v1/groups/{guid}/members", self._add_member),
            ("DELETE", "/v1/groups/{guid}/members/{user_guid}", self._remove_member),
            ("GET", "/server_settings", self._server_settings),
        ]
        return [
            *(Route(api + path, self._wrap(handler), methods=[m]) for m, path, handler in routes),
            # Anything else under the API, any method: Connect's "not supported" error.
            Route(api + "/{rest:path}", self._wrap(self._no_such_endpoint), methods=_HTTP_METHODS),
        ]

    def _wrap(
        self, handler: Callable[[Request, Any], Awaitable[_Reply]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            method, path = request.method, request.scope["path"]
            raw = await request.body()
            body: Any = None
            unreadable = False
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    unreadable = True
            authorized = request.headers.get("authorization") == f"Key {self.api_key}"
            with self._lock:
                self._calls.append(
                    RecordedCall(method, path, dict(request.query_params), body, authorized)
                )
            await self._sleep(self._latency_for(method, path))
            reply = self._injected_failure(method, path)
            if reply is None and not authorized:
                reply = _error(CODE_NOT_AUTHENTICATED)
            if (
                reply is None
                and method in ("PUT", "POST")
                and (unreadable or not isinstance(body, dict | None))
            ):
                reply = _error(CODE_BAD_JSON)
            if reply is None:
                reply = await handler(request, body)
            if reply.status >= 400:
                with self._lock:
                    self._errors.append(
                        SentError(method, path, reply.status, reply.body, reply.injected)
                    )
                    del self._errors[:-_MAX_ERRORS_KEPT]
            return self._render(reply, method, path)

        return endpoint

    def _latency_for(self, method: str, path: str) -> float:
        latency = self.latency
        if isinstance(latency, Mapping):
            return next((s for sel, s in latency.items() if matches(sel, method, path)), 0.0)
        return float(latency or 0.0)

    def _injected_failure(self, method: str, path: str) -> _Reply | None:
        outage = self._outage
        if outage == "http_500":
            return _error(CODE_INTERNAL)
        if outage == "http_503":
            return _Reply(503, "Service Unavailable", injected=True)  # what a proxy in front says
        with self._lock:
            for rule in self._fail_rules:
                if rule.remaining > 0 and matches(rule.selector, method, path):
                    rule.remaining -= 1
                    break
            else:
                return None
            self._fail_rules = [r for r in self._fail_rules if r.remaining > 0]
        if rule.body is not None:
            reply = _Reply(rule.status, rule.body, injected=True)
        else:
            reply = _injected_error(rule.code, rule.status, rule.message)
        if rule.retry_after is not None:
            value = rule.retry_after
            reply.headers["Retry-After"] = str(int(value)) if value == int(value) else str(value)
        return reply

    def _render(self, reply: _Reply, method: str, path: str) -> Response:
        body = reply.body
        ok = 200 <= reply.status < 300
        if ok and matches(self.malformed, method, path):
            return Response("<html><body>Please sign in</body></html>", 200, media_type="text/html")
        if ok and isinstance(body, dict) and matches(self.missing_fields, method, path):
            body = dict(body)
            body.pop("results" if "results" in body else "guid", None)
        if body is None:  # 204, and the lock endpoint's 200 with an empty body
            return Response(status_code=reply.status, headers=reply.headers)
        if isinstance(body, str):
            return PlainTextResponse(body, reply.status, headers=reply.headers)
        return JSONResponse(body, reply.status, headers=reply.headers)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; False if cut short because the server is stopping."""
        if seconds <= 0:
            return True
        if seconds <= _PLAIN_SLEEP_MAX:
            await asyncio.sleep(seconds)
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._interrupt.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, 0.02))
        return False

    def _write_mode_for(self, method: str, path: str) -> str:
        with self._lock:
            modes = list(self._write_modes.items())
        mode = next((m for selector, m in modes if matches(selector, method, path)), None)
        if mode is not None:
            return mode
        if method == "PUT" and _norm_path(path) == "v1/users":
            return self._put_mode
        return "normal"

    async def _write(self, request: Request, commit: Callable[[], _Reply]) -> _Reply:
        """Carry out a write under the fault mode that names it.

        `commit` checks and applies the change under the lock and returns the answer; a
        refusal is answered as it is, whatever the mode."""
        mode = self._write_mode_for(request.method, request.scope["path"])
        if mode == "fail_500":
            return _error(CODE_INTERNAL)
        if mode == "hang":
            await self._sleep(self.hang_seconds)
            return _Reply(503, "Service Unavailable", injected=True)
        if mode == "commit_late" and not await self._sleep(self.commit_delay):
            return _Reply(503, "Service Unavailable", injected=True)
        with self._lock:
            reply = commit()
        if reply.status >= 300:
            return reply
        if mode == "commit_then_500":
            return _error(CODE_INTERNAL)
        if mode == "commit_then_hang" and not await self._sleep(self.hang_seconds):
            return _Reply(503, "Service Unavailable", injected=True)
        if mode == "commit_late" and not await self._sleep(self.answer_delay):
            return _Reply(503, "Service Unavailable", injected=True)
        return reply

    # -- users ------------------------------------------------------------------------------

    async def _remote_search(self, request: Request, _body: Any) -> _Reply:
        prefix = request.query_params.get("prefix")
        if not prefix:
            return _error(CODE_MISSING_PARAMETER)
        limit = _int_param(request, "limit", 20)
        if isinstance(limit, _Reply):
            return limit
        if not 1 <= limit <= 500:
            return _error(CODE_BAD_RANGE)
        if self.key_role == "viewer":
            return _error(CODE_NOT_PERMITTED)
        if not self._flag("external_user_search"):
            return _error(CODE_PROVIDER_CANNOT)
        if self.remote_search_error_code is not None:
            return _injected_error(self.remote_search_error_code)
        with self._lock:
            ranked = sorted(
                (rank, person)
                for person in self._directory.values()
                if (
                    rank := similarity(prefix, person.username, person.first_name, person.last_name)
                )
                is not None
            )
            cap = self.remote_search_max_results
            if cap is not None and len(ranked) > cap:
                return _error(CODE_TOO_MANY_RESULTS)
            hide = self._hide_emails()
            results = [self._remote_row(person, hide) for _, person in ranked[:limit]]
        return _Reply(200, {"results": results, "current_page": 1, "total": len(ranked)})

    def _remote_row(self, person: _Person, hide_email: bool) -> dict[str, Any]:
        account = self._account_by_username(person.username)
        values = self.unregistered_values
        row: dict[str, Any]
        if account is not None:
            row = account.to_json(hide_email=hide_email, values=values, extra=self.extra_fields)
        else:
            blank = _blank_time(values)
            row = {
                "guid": None,
                "email": "" if hide_email else person.email,
                "username": person.username,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "user_role": None if values == "null" else "",
                "created_time": blank,
                "updated_time": blank,
                "active_time": blank,
                "confirmed": False,
                "locked": False,
            }
            if self.extra_fields:
                row.update(_extra_fields(person.unique_id))
        row["temp_ticket"] = self._issue_ticket_locked(person.username)
        return row

    async def _list_users(self, request: Request, _body: Any) -> _Reply:
        prefix = request.query_params.get("prefix") or ""
        paging = _paging(request)
        if isinstance(paging, _Reply):
            return paging
        page_number, page_size = paging
        roles = _choices(request.query_params.get("user_role"))
        if roles is not None and not roles <= set(ROLES):
            return _error(CODE_UNKNOWN_ROLE)
        statuses = _choices(request.query_params.get("account_status"))
        if statuses is not None:
            if not statuses <= set(ACCOUNT_STATUSES):
                return _error(CODE_UNKNOWN_STATUS)
            if self.key_role != "administrator":
                return _error(CODE_NOT_PERMITTED)
        if prefix:
            page_number = 1  # as documented: a prefix search always returns the first page
        now = _now_ns()
        with self._lock:
            ranked = sorted(
                (rank, account)
                for account in self._accounts.values()
                if (roles is None or account.user_role in roles)
                and (statuses is None or self._account_status(account, now) in statuses)
                and (
                    rank := similarity(
                        prefix, account.username, account.first_name, account.last_name
                    )
                    if prefix
                    else (0, 0, account.username.casefold(), account.username)
                )
                is not None
            )
            start = (page_number - 1) * page_size
            results = [self._user_json(a) for _, a in ranked[start : start + page_size]]
        return _Reply(200, {"results": results, "current_page": page_number, "total": len(ranked)})

    async def _create_user(self, request: Request, body: Any) -> _Reply:
        if self.put_error_code is not None:
            return _injected_error(self.put_error_code)
        ticket = body.get("temp_ticket") if isinstance(body, dict) else None
        if not isinstance(ticket, str) or not ticket:
            return _error(CODE_MISSING_PARAMETER)
        if self.key_role == "viewer":
            return _error(CODE_NOT_PERMITTED)
        if not self._flag("external_user_search"):
            return _error(CODE_NO_TICKETS)

        def commit() -> _Reply:
            username = self._tickets.get(ticket)
            if username is None or username not in self._directory:
                return _error(CODE_STALE_TICKET)
            if self._account_by_username(username) is not None:
                return _error(CODE_USERNAME_IN_USE)
            if self.license_checked_on_create and self._license_full():
                return _error(CODE_LICENSE_FULL)
            person = self._directory[username]
            now = _now_ns()
            account = _Account(
                guid=str(uuid.uuid4()),
                username=username,
                first_name=person.first_name,
                last_name=person.last_name,
                email=person.email,
                user_role=self.default_user_role,
                locked=False,
                created_ns=now,
                updated_ns=now,
                unique_id=person.unique_id,
            )
            self._store_account(account)
            if self.single_use_tickets:
                self._tickets.pop(ticket, None)
            return _Reply(200, self._user_json(account))

        return await self._write(request, commit)

    async def _get_user(self, request: Request, _body: Any) -> _Reply:
        with self._lock:
            account = self._accounts.get(request.path_params["guid"])
            if account is None:
                return _error(CODE_NOT_FOUND)
            return _Reply(200, self._user_json(account))

    async def _current_user(self, _request: Request, _body: Any) -> _Reply:
        with self._lock:
            return _Reply(200, self._user_json(self._accounts[self.owner_guid], own=True))

    async def _update_user(self, request: Request, body: Any) -> _Reply:
        changes = {
            name: value
            for name, value in (body or {}).items()
            if name in ("email", "username", "first_name", "last_name", "user_role")
        }
        if any(not isinstance(value, str) for value in changes.values()):
            return _error(CODE_BAD_JSON)
        role = changes.get("user_role")
        if role is not None and role not in ROLES:
            return _error(CODE_UNKNOWN_ROLE)
        guid = request.path_params["guid"]

        def commit() -> _Reply:
            account = self._accounts.get(guid)
            if account is None:
                return _error(CODE_NOT_FOUND)
            refused = self._edit_refusal(account, changes)
            if refused is not None:
                return refused
            username = changes.get("username", account.username)
            if username != account.username and self._account_by_username(username) is not None:
                return _error(CODE_USERNAME_IN_USE)
            self._guid_by_username.pop(account.username, None)
            for name, value in changes.items():
                setattr(account, name, value)
            self._guid_by_username[account.username] = account.guid
            account.updated_ns = _now_ns()
            return _Reply(200, account.editable_json())

        return await self._write(request, commit)

    def _edit_refusal(self, account: _Account, changes: Mapping[str, str]) -> _Reply | None:
        admin_key = self.key_role == "administrator"
        own = account.guid == self.owner_guid
        role = changes.get("user_role")
        if role is not None and role != account.user_role:
            who = self.authentication.get("role_editable_by")
            lowering_own = own and ROLE_RANK[role] < ROLE_RANK[account.user_role]
            if who == "provider" or not (admin_key or (who == "adminandself" and lowering_own)):
                return _error(CODE_ROLE_NOT_PERMITTED)
            if account.user_role == "administrator" and self._administrators() == 1:
                return _error(CODE_LAST_ADMIN)
        for name, flag in (
            ("first_name", "name_editable_by"),
            ("last_name", "name_editable_by"),
            ("email", "email_editable_by"),
            ("username", "username_editable_by"),
        ):
            if name not in changes or changes[name] == getattr(account, name):
                continue
            who = self.authentication.get(flag)
            if who == "provider" or not (admin_key or (who == "adminandself" and own)):
                return _error(CODE_CANNOT_CHANGE)
        return None

    async def _lock_user(self, request: Request, body: Any) -> _Reply:
        locked = (body or {}).get("locked", _MISSING)
        if locked is _MISSING:
            return _error(CODE_MISSING_PARAMETER)
        if not isinstance(locked, bool):
            return _error(CODE_BAD_JSON)
        guid = request.path_params["guid"]

        def commit() -> _Reply:
            account = self._accounts.get(guid)
            if account is None:
                return _error(CODE_NOT_FOUND)
            if self.key_role != "administrator":
                return _error(CODE_LOCK_NOT_PERMITTED)
            if account.locked and not locked and self._license_full():
                return _error(CODE_LICENSE_FULL)
            if account.locked != locked:
                account.locked = locked
                account.updated_ns = _now_ns()
            return _Reply(200, None)

        return await self._write(request, commit)

    # -- groups -----------------------------------------------------------------------------

    async def _list_groups(self, request: Request, _body: Any) -> _Reply:
        if not self._flag("groups_enabled"):
            return _error(CODE_PROVIDER_CANNOT)
        prefix = request.query_params.get("prefix") or ""
        paging = _paging(request)
        if isinstance(paging, _Reply):
            return paging
        page_number, page_size = paging
        if prefix:
            page_number = 1
        with self._lock:
            ranked = sorted(
                (rank, group.guid, group)
                for group in self._groups.values()
                if (
                    rank := similarity(prefix, group.name)
                    if prefix
                    else (0, 0, group.name.casefold(), group.name)
                )
                is not None
            )
            start = (page_number - 1) * page_size
            results = [g.to_json() for _, _, g in ranked[start : start + page_size]]
        return _Reply(200, {"results": results, "current_page": page_number, "total": len(ranked)})

    async def _remote_group_search(self, request: Request, _body: Any) -> _Reply:
        prefix = request.query_params.get("prefix")
        if not prefix:
            return _error(CODE_MISSING_PARAMETER)
        limit = _int_param(request, "limit", 20)
        if isinstance(limit, _Reply):
            return limit
        if not 1 <= limit <= 500:
            return _error(CODE_BAD_RANGE)
        if self.key_role == "viewer":
            return _error(CODE_NOT_PERMITTED)
        if not (self._flag("groups_enabled") and self._flag("external_group_search")):
            return _error(CODE_PROVIDER_CANNOT)
        with self._lock:
            ranked = sorted(
                (rank, found.unique_id, found)
                for found in self._directory_groups.values()
                if (rank := similarity(prefix, found.name)) is not None
            )
            results = []
            for _, _, found in ranked[:limit]:
                group = self._group_from_directory(found.unique_id)
                results.append(
                    {
                        "guid": None if group is None else group.guid,
                        "name": found.name,
                        "temp_ticket": self._issue_group_ticket_locked(found.unique_id),
                    }
                )
        return _Reply(200, {"results": results, "current_page": 1, "total": len(ranked)})

    async def _create_group(self, request: Request, body: Any) -> _Reply:
        ticket = (body or {}).get("temp_ticket")
        if not isinstance(ticket, str) or not ticket:
            return _error(CODE_MISSING_PARAMETER)
        if self.key_role == "viewer":
            return _error(CODE_NOT_PERMITTED)
        if not (self._flag("groups_enabled") and self._flag("external_group_search")):
            return _error(CODE_NO_TICKETS)

        def commit() -> _Reply:
            unique_id = self._group_tickets.get(ticket)
            found = None if unique_id is None else self._directory_groups.get(unique_id)
            if found is None:
                return _error(CODE_STALE_TICKET)
            if self._group_from_directory(found.unique_id) is not None:
                return _error(CODE_GROUP_EXISTS)
            if any(g.name == found.name for g in self._groups.values()):
                return _error(CODE_GROUP_NAME_IN_USE)
            members = {
                guid
                for username in found.members
                if (guid := self._guid_by_username.get(username)) is not None
            }
            group = _Group(str(uuid.uuid4()), found.name, None, found.unique_id, members)
            self._groups[group.guid] = group
            return _Reply(200, group.to_json())

        return await self._write(request, commit)

    async def _get_group(self, request: Request, _body: Any) -> _Reply:
        with self._lock:
            group = self._groups.get(request.path_params["guid"])
            if group is None:
                return _error(CODE_NOT_FOUND)
            return _Reply(200, group.to_json())

    async def _group_members(self, request: Request, _body: Any) -> _Reply:
        if not self._flag("groups_enabled") or self._flag("external_group_members"):
            return _error(CODE_PROVIDER_CANNOT)
        with self._lock:
            group = self._groups.get(request.path_params["guid"])
            if group is None:
                return _error(CODE_NOT_FOUND)
            members = sorted(
                (self._accounts[guid] for guid in group.members if guid in self._accounts),
                key=lambda a: a.username,
            )
            results = [self._user_json(a) for a in members]
        return _Reply(200, {"results": results, "total": len(results)})

    async def _add_member(self, request: Request, body: Any) -> _Reply:
        return await self._change_members(request, (body or {}).get("user_guid"), add=True)

    async def _remove_member(self, request: Request, _body: Any) -> _Reply:
        return await self._change_members(request, request.path_params["user_guid"], add=False)

    async def _change_members(self, request: Request, user_guid: Any, *, add: bool) -> _Reply:
        if not self._flag("groups_enabled") or self._flag("external_group_members"):
            return _error(CODE_PROVIDER_CANNOT)
        if not isinstance(user_guid, str) or not user_guid:
            return _error(CODE_MISSING_PARAMETER)
        guid = request.path_params["guid"]

        def commit() -> _Reply:
            group = self._groups.get(guid)
            if group is None:
                return _error(CODE_NOT_FOUND)
            if user_guid not in self._accounts:
                return _error(CODE_NO_SUCH_USER)
            if self.key_role != "administrator" and group.owner_guid != self.owner_guid:
                return _error(CODE_NOT_YOURS)
            if add and user_guid in group.members:
                return _error(CODE_ALREADY_MEMBER)
            if not add and user_guid not in group.members:
                return _error(CODE_NOT_A_MEMBER)
            (group.members.add if add else group.members.discard)(user_guid)
            return _Reply(204, None)

        return await self._write(request, commit)

    # -- the rest ---------------------------------------------------------------------------

    async def _server_settings(self, _request: Request, _body: Any) -> _Reply:
        return _Reply(
            200,
            {
                "version": self.version,
                "build": "fake",
                "about": "",
                "authentication": copy.deepcopy(self.authentication),
                "license": dict(self.license),
                "viewer_kiosk": False,
                "mail_configured": False,
                "self_registration": False,
                "prohibited_usernames": ["connect", "apps", "users", "groups"],
            },
        )

    async def _no_such_endpoint(self, _request: Request, _body: Any) -> _Reply:
        return _error(CODE_NO_SUCH_ENDPOINT)

    # -- helpers (callers hold self._lock) ---------------------------------------------------

    def _hide_emails(self) -> bool:
        return self.hide_emails and self.key_role != "administrator"

    def _user_json(self, account: _Account, *, own: bool = False) -> dict[str, Any]:
        return account.to_json(
            hide_email=self._hide_emails() and not own,
            values=self.unregistered_values,
            extra=self.extra_fields,
        )

    def _account_status(self, account: _Account, now: int) -> str:
        if account.locked:
            return "locked"
        days = int(self.license.get("user-activity-days") or 0)
        recent = account.active_ns is not None and now - account.active_ns <= days * _DAY_NS
        return "licensed" if recent else "inactive"

    def _license_full(self) -> bool:
        seats = int(self.license.get("users") or 0)
        if seats <= 0:
            return False
        now = _now_ns()
        used = sum(1 for a in self._accounts.values() if self._account_status(a, now) == "licensed")
        return used >= seats

    def _administrators(self) -> int:
        return sum(1 for a in self._accounts.values() if a.user_role == "administrator")

    def _group_from_directory(self, unique_id: str) -> _Group | None:
        return next((g for g in self._groups.values() if g.unique_id == unique_id), None)

    def _account_by_username(self, username: str) -> _Account | None:
        guid = self._guid_by_username.get(username)
        return None if guid is None else self._accounts[guid]

    def _store_account(self, account: _Account) -> None:
        self._accounts[account.guid] = account
        self._guid_by_username[account.username] = account.guid

    def _issue_ticket_locked(self, username: str) -> str:
        return self._issue(self._tickets, username)

    def _issue_group_ticket_locked(self, unique_id: str) -> str:
        return self._issue(self._group_tickets, unique_id)

    def _issue(self, tickets: dict[str, str], subject: str) -> str:
        if len(tickets) >= _MAX_TICKETS:  # oldest first, as an expiry would
            for old in list(tickets)[: _MAX_TICKETS // 10]:
                del tickets[old]
        ticket = _new_ticket()
        tickets[ticket] = subject
        self.issued_tickets.add(ticket)
        return ticket


def _unique_id(kind: str, name: str, unit: str) -> str:
    # What an LDAP provider uses as the unique ID: the entry's DN.
    return f"{kind}={name},ou={unit},dc=example,dc=com"


def _int_param(request: Request, name: str, default: int) -> int | _Reply:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return _error(CODE_BAD_PARAMETER)


def _paging(request: Request) -> tuple[int, int] | _Reply:
    page_size = _int_param(request, "page_size", 20)
    if isinstance(page_size, _Reply):
        return page_size
    page_number = _int_param(request, "page_number", 1)
    if isinstance(page_number, _Reply):
        return page_number
    if not 1 <= page_size <= 500 or page_number < 1:
        return _error(CODE_BAD_RANGE)
    return page_number, page_size


def _choices(value: str | None) -> set[str] | None:
    """A filter such as `account_status=locked|inactive`; None when not given."""
    if not value:
        return None
    return {part.strip() for part in value.split("|")}
