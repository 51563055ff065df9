"""How many approvals a request needs before it is carried out (APPROVALS_REQUIRED), and which
of those given count.

An approval counts for the role the approver saw when they gave it: a request whose role is
raised needs its approvals again, for the new role. An approver counts once per role, however
often they click (the store keeps one row per approver and role).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.workflow.models import Approval, ProvisioningRequest
from bot.workflow.roles import ROLES

# More than this many distinct approvers for one request is a typo, not a policy.
MAX_APPROVALS = 5


@dataclass(frozen=True, slots=True)
class ApprovalsRequired:
    """Distinct approvals each role needs; a role not named needs one."""

    counts: Mapping[str, int] = field(default_factory=dict)

    def needed(self, role: str | None) -> int:
        """How many approvals granting `role` takes. No role chosen means Connect's default
        role, which a server may set to Viewer or Publisher: the larger of the two counts, so
        that the rule is never weaker than the role Connect could give."""
        if role is None:
            return max(self.counts.get("viewer", 1), self.counts.get("publisher", 1))
        return self.counts.get(role, 1)


def parse_approvals_required(text: str) -> dict[str, int]:
    """`viewer:1,publisher:1,administrator:2` as a mapping; raises ValueError saying what is
    wrong (an unknown role, a count outside 1..MAX_APPROVALS, a role named twice)."""
    counts: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        role, sep, number = part.partition(":")
        role = role.strip().lower()
        if not sep:
            raise ValueError(
                f"{part.strip()!r} has no count: write role:count, e.g. administrator:2"
            )
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use {', '.join(ROLES)}")
        if role in counts:
            raise ValueError(f"{role} is named twice")
        try:
            count = int(number.strip())
        except ValueError:
            raise ValueError(f"the count for {role} is not a whole number") from None
        if not 1 <= count <= MAX_APPROVALS:
            raise ValueError(f"the count for {role} must be between 1 and {MAX_APPROVALS}")
        counts[role] = count
    return counts


def current(request: ProvisioningRequest) -> tuple[Approval, ...]:
    """The approvals of the request's current round, oldest first (a decision undone, the
    request back to pending, leaves its approvals on record but counting no more)."""
    return tuple(a for a in request.approvals if a.round == request.approval_round)


def approvals_for(request: ProvisioningRequest, role: str | None) -> tuple[Approval, ...]:
    """The current round's approvals of `role`, oldest first."""
    return tuple(approval for approval in current(request) if approval.role == role)


def counting(request: ProvisioningRequest) -> tuple[Approval, ...]:
    """The approvals counting towards the question the request asks now (the role asked)."""
    return approvals_for(request, request.role_asked)


def other_roles(request: ProvisioningRequest) -> dict[str | None, tuple[Approval, ...]]:
    """The current round's approvals of roles other than the one asked (a lower role granted
    in a confirmation, or the role asked before a raise), by role."""
    found: dict[str | None, list[Approval]] = {}
    for approval in current(request):
        if approval.role != request.role_asked:
            found.setdefault(approval.role, []).append(approval)
    return {role: tuple(given) for role, given in found.items()}


def deciding(request: ProvisioningRequest) -> tuple[Approval, ...]:
    """The approvals that approved the request: those of the role the last one (its decider's)
    was for, in the round that reached the count. Empty for requests approved before approvals
    were recorded, and for those not approved."""
    last = next(
        (a for a in reversed(current(request)) if a.approver_id == request.decided_by), None
    )
    if last is None:
        return ()
    return approvals_for(request, last.role)


def approvers_of(approvals: Iterable[Approval]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for approval in approvals:
        seen.setdefault(approval.approver_id, None)
    return tuple(seen)
