"""The provisioning request's states."""

from __future__ import annotations

from enum import StrEnum


class RequestState(StrEnum):
    PENDING = "pending"  # waiting for an approver; Approve and Deny are live
    PROVISIONING = (
        "provisioning"  # one approver won the click; the PUT is in flight (under a lease)
    )
    APPROVED = "approved"  # every step was carried out (connect_guid holds the account)
    ALREADY_EXISTS = "already_exists"  # Connect already had the username (connect_guid holds it)
    # A later step (setting the role) failed after the earlier ones were done: the card says
    # which and why, and approvers may retry that step alone.
    INCOMPLETE = "incomplete"
    # An approver closed an incomplete request as it stood: the steps done stay done, the
    # failed one was given up (the record says what Connect had when it was closed).
    CLOSED = "closed"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATES

    @property
    def is_final(self) -> bool:
        return not self.is_active


# One request at a time per person: an incomplete one still waits for an approver's retry.
ACTIVE_STATES = frozenset(
    {RequestState.PENDING, RequestState.PROVISIONING, RequestState.INCOMPLETE}
)
