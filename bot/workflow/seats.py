"""`/connect-user seats`: Connect's licence seats, for approvers only (the same check as the
list of pending requests)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from bot.workflow.approvers import approver_refusal
from bot.workflow.models import SeatCount
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


class SeatReport:
    def __init__(self, *, seats: Seats, approvers: ApproverPolicy) -> None:
        self.seats = seats
        self.approvers = approvers

    async def for_approver(self, user_id: str) -> SeatsOutcome | Refused:
        refused = await approver_refusal(self.approvers, user_id)
        if refused is not None:
            return Refused(refused)
        return await read_seats(self.seats)


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
