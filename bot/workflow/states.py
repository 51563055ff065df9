"""The provisioning request's states."""

from __future__ import annotations

from enum import StrEnum


class RequestState(StrEnum):
    PENDING = "pending"  # waiting for an approver; Approve and Deny are live
    PROVISIONING = (
        "provisioning"  # one approver won the click; the PUT is in flight (under a lease)
    )
    APPROVED = "approved"  # the account was created (connect_guid holds it)
    ALREADY_EXISTS = "already_exists"  # Connect already had the username (connect_guid holds it)
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
