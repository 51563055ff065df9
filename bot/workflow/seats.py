"""`/connect-user seats`: Connect's licence seats, for approvers only (the same check as the
list of pending requests)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.workflow.approvers import approver_refusal
from bot.workflow.clock import Clock, utcnow
from bot.workflow.models import IdleAccounts, SeatCount
from bot.workflow.outcomes import Refused
from bot.workflow.ports import (
    ApproverPolicy,
    DirectoryError,
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
    Seats,
)

log = logging.getLogger(__name__)

# Accounts nobody uses, per message (each with a Lock button); the rest on further pages.
IDLE_PER_PAGE = 15


class SeatsProblem(StrEnum):
    KEY_CANNOT_READ = "key_cannot_read"  # the bot's key is not an administrator's
    CONNECT_UNAVAILABLE = "connect_unavailable"
    CONNECT_REFUSED = "connect_refused"  # any other refusal (explained in the log)
    CONNECT_GARBAGE = "connect_garbage"


@dataclass(frozen=True, slots=True)
class SeatsOutcome:
    """The seat counts, or why there are none."""

    seats: SeatCount | None = None
    problem: SeatsProblem | None = None
    # Licensed accounts nobody used lately (one page); None when they could not be listed.
    idle: IdleAccounts | None = None


class SeatReport:
    def __init__(
        self,
        *,
        seats: Seats,
        approvers: ApproverPolicy,
        inactive_after_days: int = 90,
        clock: Clock = utcnow,
    ) -> None:
        self.seats = seats
        self.approvers = approvers
        self.inactive_after_days = inactive_after_days
        self.clock = clock

    async def for_approver(self, user_id: str, *, page: int = 1) -> SeatsOutcome | Refused:
        """The counts and page `page` of the accounts nobody used (approvers only, checked at
        every page: a page's button can be pressed by anyone who sees it)."""
        refused = await approver_refusal(self.approvers, user_id)
        if refused is not None:
            return Refused(refused)
        outcome = await read_seats(self.seats)
        if outcome.seats is None:
            return outcome
        return SeatsOutcome(seats=outcome.seats, idle=await self._idle(page))

    async def _idle(self, page: int) -> IdleAccounts | None:
        idle_since = self.clock() - timedelta(days=self.inactive_after_days)
        try:
            accounts = await self.seats.idle_accounts(idle_since=idle_since)
        except DirectoryError as exc:
            log.warning("could not list the accounts nobody uses: %s", exc.problem)
            return None
        pages = max(1, -(-len(accounts) // IDLE_PER_PAGE))
        page = min(max(1, page), pages)
        start = (page - 1) * IDLE_PER_PAGE
        return IdleAccounts(
            accounts=tuple(accounts[start : start + IDLE_PER_PAGE]),
            total=len(accounts),
            idle_days=self.inactive_after_days,
            page=page,
            pages=pages,
        )


async def read_seats(seats: Seats) -> SeatsOutcome:
    """The counts, or the problem in the workflow's terms (each failure logged once here)."""
    try:
        return SeatsOutcome(seats=await seats.seats())
    except DirectoryRefused as exc:
        if exc.kind is DirectoryProblem.NOT_PERMITTED:
            return SeatsOutcome(problem=SeatsProblem.KEY_CANNOT_READ)
        log.warning("Connect refused the seat counts: %s", exc.explanation)
        return SeatsOutcome(problem=SeatsProblem.CONNECT_REFUSED)
    except DirectoryUnavailable as exc:
        log.warning("could not read the seat counts: %s", exc.problem)
        return SeatsOutcome(problem=SeatsProblem.CONNECT_UNAVAILABLE)
    except DirectoryError as exc:
        log.warning("could not read the seat counts: %s", exc.problem)
        return SeatsOutcome(problem=SeatsProblem.CONNECT_GARBAGE)
