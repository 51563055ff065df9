"""The workflow's `Seats` port, carried out by the Connect client: licence seats in use, the
limit, inactive and locked accounts.

Only an administrator's key may count accounts by status. The key's role is read first (and kept a
while), so a publisher's key is told apart without asking Connect for counts it will refuse, and
"this key cannot read seats" is one calm state (logged once per reading), not an error per card.
Connect's failures come out as the workflow's errors, explained as `bot.connect.directory` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from bot.connect.client import MAX_LIMIT, ConnectClient
from bot.connect.directory import account, translated
from bot.workflow.models import Account, SeatCount
from bot.workflow.ports import (
    DirectoryError,
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
)

T = TypeVar("T")

log = logging.getLogger(__name__)

# The key's owner changes role rarely; a failure to read it is remembered for a minute, so a
# Connect that does not answer slows no more than one card a minute.
KEY_ROLE_TTL = 600.0
KEY_ROLE_FAILURE_TTL = 60.0

ADMINISTRATOR = "administrator"
# Licensed accounts looked at for idle seats: MAX_IDLE_PAGES pages of MAX_LIMIT (10,000).
MAX_IDLE_PAGES = 20


def cannot_read_seats(role: str | None) -> DirectoryRefused:
    """The refusal for a key that is not an administrator's: a state, said in words."""
    whose = f"a {role}'s" if role else "not an administrator's"
    return DirectoryRefused(
        DirectoryProblem.NOT_PERMITTED,
        "the bot's Connect API key may not read licence seats",
        f"The bot's Connect API key is {whose}: only an administrator's key may count licence "
        "seats.",
    )


class ConnectSeats:
    """`bot.workflow.ports.Seats` over a `ConnectClient`.

    `timeout` bounds one whole reading (the counts are read side by side), whatever the client's
    retries would add: a card waits for it."""

    def __init__(
        self,
        client: ConnectClient,
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self._clock = clock
        self._role: str | None = None
        self._role_failure: str | None = None
        self._role_until = 0.0
        self._role_lock = asyncio.Lock()

    async def seats(self) -> SeatCount:
        role = await self.key_role()
        if role != ADMINISTRATOR:
            raise cannot_read_seats(role)
        failure: DirectoryError | None = None
        try:
            async with asyncio.timeout(self.timeout):
                licensed, inactive, locked, server = await asyncio.gather(
                    translated(lambda: self.client.count_users(account_status="licensed")),
                    translated(lambda: self.client.count_users(account_status="inactive")),
                    translated(lambda: self.client.count_users(account_status="locked")),
                    translated(self.client.server_settings),
                )
        except TimeoutError:
            failure = DirectoryUnavailable("Connect did not answer in time")
        except DirectoryRefused as exc:
            if exc.kind is DirectoryProblem.NOT_PERMITTED:
                # The key's owner lost the role since it was read: believe Connect at once.
                self._remember_role(None)
                log.info("Connect refused to count accounts: %s", exc.explanation)
                failure = cannot_read_seats(None)
            else:
                failure = exc
        if failure is not None:
            raise failure
        licence = server.license
        return SeatCount(
            in_use=licensed,
            limit=licence.users if licence else None,
            inactive=inactive,
            locked=locked,
            activity_days=licence.user_activity_days if licence else None,
        )

    async def idle_accounts(self, *, idle_since: datetime) -> list[Account]:
        """Every licensed account (paged through, MAX_IDLE_PAGES at most) whose last activity is
        before `idle_since` (or unknown: never logged in), oldest first."""
        role = await self.key_role()
        if role != ADMINISTRATOR:
            raise cannot_read_seats(role)
        idle: list[Account] = []
        for page_number in range(1, MAX_IDLE_PAGES + 1):
            page = await translated(
                partial(
                    self.client.list_users,
                    account_status="licensed",
                    page_number=page_number,
                    page_size=MAX_LIMIT,
                )
            )
            idle.extend(
                account(user)
                for user in page.results
                if not user.locked and (user.active_time is None or user.active_time < idle_since)
            )
            if len(page.results) < MAX_LIMIT or page_number * MAX_LIMIT >= page.total:
                break
        else:
            log.warning(
                "more than %d licensed accounts: only the first were looked at for idle seats",
                MAX_IDLE_PAGES * MAX_LIMIT,
            )
        oldest = datetime.min.replace(tzinfo=UTC)
        return sorted(idle, key=lambda a: (a.active_time or oldest, a.username))

    async def key_role(self) -> str | None:
        """The role of the key's owner (`GET /v1/user`), read once and kept; one read at a
        time."""
        async with self._role_lock:
            now = self._clock()
            if now < self._role_until:
                if self._role_failure is not None:
                    raise DirectoryUnavailable(self._role_failure)
                return self._role
            try:
                owner = await translated(self.client.current_user)
            except DirectoryError as exc:
                self._role_failure = exc.problem
                self._role_until = self._clock() + KEY_ROLE_FAILURE_TTL
                raise
            self._remember_role(owner.user_role)
            if owner.user_role != ADMINISTRATOR:
                log.info(
                    "the bot's Connect API key belongs to a %s: licence seats cannot be read "
                    "(cards show no seat line)",
                    owner.user_role or "user of unknown role",
                )
            return owner.user_role

    def _remember_role(self, role: str | None) -> None:
        self._role = role
        self._role_failure = None
        self._role_until = self._clock() + KEY_ROLE_TTL
