"""The workflow's `Directory` port, carried out by the Connect client.

This is the one place where Connect's answers become the workflow's values and Connect's failures
its errors: error codes are matched here (never their texts, which change between versions) and
turned into a `DirectoryProblem` and the plain words of `bot.connect.codes`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.connect import codes
from bot.connect.capabilities import capabilities
from bot.connect.client import MAX_LIMIT, ConnectClient, is_guid
from bot.connect.errors import (
    ConnectAPIError,
    ConnectError,
    ConnectProtocolError,
    ConnectUnavailable,
)
from bot.connect.models import ConnectUser, RemoteUser
from bot.workflow.models import Account, DirectoryCapabilities, DirectoryEntry, DirectoryPage
from bot.workflow.ports import (
    DirectoryError,
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
    DirectoryUnreadable,
)

T = TypeVar("T")

log = logging.getLogger(__name__)

CAPABILITIES_TTL = 600.0
CAPABILITIES_FAILURE_TTL = 60.0


class ConnectDirectory:
    """`bot.workflow.ports.Directory` over a `ConnectClient`."""

    def __init__(
        self,
        client: ConnectClient,
        *,
        key_role_from: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self.client = client
        # Where the key's role is read when another adapter keeps it already (the seats): one
        # GET /v1/user for both.
        self._key_role_from = key_role_from
        # The provider's flags change only when Connect is reconfigured and restarted.
        self._capabilities: DirectoryCapabilities | None = None
        self._capabilities_failure: str | None = None
        self._capabilities_until = 0.0
        self._capabilities_lock = asyncio.Lock()
        self._key_role: str | None = None
        self._key_role_until = 0.0
        self._key_lock = asyncio.Lock()

    async def search(self, prefix: str, *, limit: int) -> DirectoryPage:
        result = await translated(lambda: self.client.search_remote(prefix, limit=limit))
        return DirectoryPage(
            entries=tuple(directory_entry(user) for user in result.results), total=result.total
        )

    async def find_entry(self, username: str) -> DirectoryEntry | None:
        found = await translated(lambda: self.client.find_remote_user(username))
        return None if found is None else directory_entry(found)

    async def create_account(self, temp_ticket: str) -> Account:
        created = await translated(lambda: self.client.create_from_ticket(temp_ticket))
        return account(created)

    async def find_account(self, username: str) -> Account | None:
        found = await translated(lambda: self.client.find_user(username))
        return None if found is None else account(found)

    async def search_accounts(self, prefix: str, *, limit: int) -> DirectoryPage:
        result = await translated(
            lambda: self.client.search_users(prefix, limit=min(limit, MAX_LIMIT))
        )
        return DirectoryPage(
            entries=tuple(account_entry(user) for user in result.results),
            total=max(result.total, len(result.results)),
        )

    async def key_role(self) -> str | None:
        """Kept like the capabilities: a key's owner changes role only by an administrator's
        hand, and a stale answer only offers a choice Connect then refuses in words (code 23)."""
        if self._key_role_from is not None:
            return await self._key_role_from()
        async with self._key_lock:
            now = time.monotonic()
            if self._key_role_until > now:
                return self._key_role
            owner = await translated(self.client.current_user)
            self._key_role = owner.user_role
            self._key_role_until = time.monotonic() + CAPABILITIES_TTL
            return self._key_role

    async def get_account(self, guid: str) -> Account | None:
        if not is_guid(guid):
            return None  # no account has such a GUID; and it must not reach a URL path
        found = await translated(lambda: self._user_or_none(guid))
        return None if found is None else account(found)

    async def _user_or_none(self, guid: str) -> ConnectUser | None:
        try:
            return await self.client.get_user(guid)
        except ConnectAPIError as exc:
            if exc.status == 404:  # code 4 (no such object) or 9 (no such user)
                return None
            raise

    async def set_role(self, guid: str, role: str) -> Account:
        edited = await translated(lambda: self.client.set_role(guid, role))
        return Account(
            guid=guid,
            username=edited.username,
            first_name=edited.first_name,
            last_name=edited.last_name,
            email=edited.email,
            user_role=edited.user_role,
        )

    async def set_locked(self, guid: str, locked: bool) -> None:
        if not is_guid(guid):
            # No account has such a GUID, and it must not reach a URL path.
            raise DirectoryRefused(
                DirectoryProblem.OTHER,
                "not a Connect account",
                "The bot was asked to lock an account that is not a Connect account's GUID.",
            )
        await translated(lambda: self.client.set_locked(guid, locked))

    async def capabilities(self) -> DirectoryCapabilities:
        """Read once and kept for CAPABILITIES_TTL (Connect may be reconfigured and restarted);
        a failure is remembered for FAILURE_TTL so a Connect that does not answer slows no more
        than one search a minute; one read at a time."""
        async with self._capabilities_lock:
            now = time.monotonic()
            if self._capabilities is not None and now < self._capabilities_until:
                return self._capabilities
            if self._capabilities_failure is not None and now < self._capabilities_until:
                raise DirectoryUnavailable(self._capabilities_failure)
            try:
                server = await translated(self.client.server_settings)
            except DirectoryError as exc:
                self._capabilities_failure = exc.problem
                self._capabilities_until = time.monotonic() + CAPABILITIES_FAILURE_TTL
                raise
            self._capabilities = capabilities(server)
            self._capabilities_failure = None
            self._capabilities_until = time.monotonic() + CAPABILITIES_TTL
            return self._capabilities


def directory_entry(user: RemoteUser) -> DirectoryEntry:
    return DirectoryEntry(
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.email,
        guid=user.guid,
        user_role=user.user_role,
        locked=user.locked,
        temp_ticket=user.temp_ticket,
    )


def account_entry(user: ConnectUser) -> DirectoryEntry:
    """An existing account as a search result (no ticket: it has its account)."""
    return DirectoryEntry(
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.email,
        guid=user.guid,
        user_role=user.user_role,
        locked=user.locked,
    )


def account(user: ConnectUser) -> Account:
    return Account(
        guid=user.guid,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.email,
        user_role=user.user_role,
        locked=user.locked,
        created_time=user.created_time,
        active_time=user.active_time,
    )


async def translated(call: Callable[[], Awaitable[T]]) -> T:
    """Run a client call; Connect's failures come out as the workflow's errors.

    Raised outside the except block, so no `__context__` leads back to the client's error."""
    error: DirectoryError | None = None
    try:
        return await call()
    except ConnectAPIError as exc:
        error = refusal(exc)
    except ConnectUnavailable as exc:
        error = DirectoryUnavailable(unavailable(exc).what)
    except ConnectProtocolError:
        error = DirectoryUnreadable("Connect gave an answer the bot could not read")
    except ConnectError:
        error = DirectoryUnavailable("Connect failed")
    raise error


def unavailable(exc: ConnectUnavailable) -> codes.CodeMeaning:
    if exc.reason == "timeout":
        return codes.TIMEOUT
    if exc.reason == "rate_limited":
        return codes.RATE_LIMITED
    if exc.reason == "server_error" and exc.status is not None:
        return codes.server_error(exc.status)
    return codes.UNREACHABLE


def _meaning(exc: ConnectAPIError) -> codes.CodeMeaning | None:
    found = codes.meaning(exc.code)
    if found is None and exc.code is None:
        # An answer without Connect's error body: its status says enough for these.
        found = {401: codes.CODES[24], 403: codes.CODES[22], 404: codes.CODES[4]}.get(exc.status)
    return found


def problem_kind(exc: ConnectAPIError) -> DirectoryProblem:
    """What a refusal means for the workflow, from its code (never its text)."""
    found = _meaning(exc)
    if found is not None:
        return found.kind
    return DirectoryProblem.NOT_PERMITTED if exc.status in (401, 403) else DirectoryProblem.OTHER


def refusal(exc: ConnectAPIError) -> DirectoryRefused:
    """A refusal in the workflow's terms, explained in the table's words; a code the table does
    not know is shown with Connect's own message (to the approver only) and logged."""
    found = _meaning(exc)
    if found is not None:
        explanation = found.explain(exc.code) if exc.code is not None else f"{found.what}."
    else:
        log.warning(
            "Connect answered %s with code %s, which the bot has no words for", exc.status, exc.code
        )
        explanation = (
            f"Connect refused the request ({exc.status}, code {exc.code}), saying: {exc.message}"
        )
    return DirectoryRefused(
        problem_kind(exc),
        f"Connect refused the request ({exc.status}, code {exc.code})",
        explanation,
        code=exc.code,
    )
