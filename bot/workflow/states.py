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
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATES

    @property
    def is_final(self) -> bool:
        return not self.is_active


ACTIVE_STATES = frozenset({RequestState.PENDING, RequestState.PROVISIONING})
