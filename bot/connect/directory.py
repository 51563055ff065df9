"""The workflow's `Directory` port, carried out by the Connect client.

This is the one place where Connect's answers become the workflow's values and Connect's failures
its errors: error codes are matched here (never their texts, which change between versions) and
turned into a `DirectoryProblem` and plain words for the approver.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.connect.client import ConnectClient
from bot.connect.errors import (
    CODE_NOT_AUTHENTICATED,
    CODE_PROVIDER_CANNOT_CREATE,
    CODE_PROVIDER_UNSUPPORTED,
    CODE_STALE_TICKET,
    CODE_TOO_MANY_RESULTS,
    CODE_USER_LOCKED,
    CODE_USERNAME_IN_USE,
    PERMISSION_CODES,
    ConnectAPIError,
    ConnectError,
    ConnectProtocolError,
    ConnectUnavailable,
)
from bot.connect.models import ConnectUser, RemoteUser
from bot.workflow.models import Account, DirectoryEntry, DirectoryPage
from bot.workflow.ports import (
    DirectoryError,
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
    DirectoryUnreadable,
)

T = TypeVar("T")

_UNAVAILABLE = {
    "timeout": "did not answer in time",
    "connection": "could not be reached",
    "rate_limited": "asked the bot to slow down (429)",
}


class ConnectDirectory:
    """`bot.workflow.ports.Directory` over a `ConnectClient`."""

    def __init__(self, client: ConnectClient) -> None:
        self.client = client

    async def search(self, prefix: str, *, limit: int) -> DirectoryPage:
        result = await _translated(lambda: self.client.search_remote(prefix, limit=limit))
        return DirectoryPage(
            entries=tuple(directory_entry(user) for user in result.results), total=result.total
        )

    async def find_entry(self, username: str) -> DirectoryEntry | None:
        found = await _translated(lambda: self.client.find_remote_user(username))
        return None if found is None else directory_entry(found)

    async def create_account(self, temp_ticket: str) -> Account:
        created = await _translated(
            lambda: self.client.create_from_ticket(temp_ticket), explain=_creation_refused
        )
        return account(created)

    async def find_account(self, username: str) -> Account | None:
        found = await _translated(lambda: self.client.find_user(username))
        return None if found is None else account(found)


def directory_entry(user: RemoteUser) -> DirectoryEntry:
    return DirectoryEntry(
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.email,
        guid=user.guid,
        user_role=user.user_role,
        temp_ticket=user.temp_ticket,
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
    )


async def _translated(
    call: Callable[[], Awaitable[T]],
    *,
    explain: Callable[[ConnectAPIError], str] | None = None,
) -> T:
    """Run a client call; Connect's failures come out as the workflow's errors.

    Raised outside the except block, so no `__context__` leads back to the client's error."""
    error: DirectoryError | None = None
    try:
        return await call()
    except ConnectAPIError as exc:
        error = refusal(exc, explain=explain)
    except ConnectUnavailable as exc:
        what = _UNAVAILABLE.get(exc.reason) or (
            f"failed on its side ({exc.status})" if exc.reason == "server_error" else "failed"
        )
        error = DirectoryUnavailable(f"Connect {what}")
    except ConnectProtocolError:
        error = DirectoryUnreadable("Connect gave an answer the bot could not read")
    except ConnectError:
        error = DirectoryUnavailable("Connect failed")
    raise error


def problem_kind(exc: ConnectAPIError) -> DirectoryProblem:
    """What a refusal means for the workflow, from its code (never its text)."""
    if exc.code == CODE_USERNAME_IN_USE:
        return DirectoryProblem.USERNAME_TAKEN
    if exc.code == CODE_STALE_TICKET:
        return DirectoryProblem.STALE_TICKET
    if exc.code == CODE_TOO_MANY_RESULTS:
        return DirectoryProblem.TOO_MANY_RESULTS
    if exc.code in (CODE_PROVIDER_CANNOT_CREATE, CODE_PROVIDER_UNSUPPORTED):
        return DirectoryProblem.PROVIDER_CANNOT
    if exc.code == CODE_USER_LOCKED:
        return DirectoryProblem.LOCKED
    if (
        exc.status in (401, 403)
        or exc.code == CODE_NOT_AUTHENTICATED
        or exc.code in PERMISSION_CODES
    ):
        return DirectoryProblem.NOT_PERMITTED
    return DirectoryProblem.OTHER


def refusal(
    exc: ConnectAPIError, *, explain: Callable[[ConnectAPIError], str] | None = None
) -> DirectoryRefused:
    return DirectoryRefused(
        problem_kind(exc),
        f"Connect refused the request ({exc.status}, code {exc.code})",
        (explain or _refused)(exc),
        code=exc.code,
    )


def _refused(exc: ConnectAPIError) -> str:
    return f"Connect refused the request ({exc.status}, code {exc.code}): {exc.message}"


def _creation_refused(exc: ConnectAPIError) -> str:
    """Plain words for the card when Connect refused to create an account."""
    kind = problem_kind(exc)
    if exc.status == 401 or exc.code == CODE_NOT_AUTHENTICATED:
        return (
            "Connect rejected the bot's API key (401). An administrator must give the bot a valid "
            "CONNECT_API_KEY; then press Approve again."
        )
    if kind is DirectoryProblem.PROVIDER_CANNOT:
        return (
            f"Connect's authentication provider cannot create accounts from the directory "
            f"(code {exc.code}). An administrator must check Connect's authentication settings."
        )
    if kind is DirectoryProblem.LOCKED:
        return "Connect says this account is locked (code 50). An administrator must unlock it."
    if exc.status == 403:
        return (
            f"The bot's API key lacks the permission to create users (403, code {exc.code}). "
            "It must belong to a publisher or administrator; then press Approve again."
        )
    if kind is DirectoryProblem.STALE_TICKET:
        return (
            "Connect no longer accepts this person's directory ticket, even after a fresh search. "
            "Try again later, or ask the requester to search again."
        )
    return f"Connect refused to create the account ({exc.status}, code {exc.code})."
