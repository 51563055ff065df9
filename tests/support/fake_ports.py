"""In-process fakes of the workflow's ports, for tests that drive the service directly."""

from __future__ import annotations

from bot.workflow.ports import ApproverCheckUnavailable, ApproverVerdict


class Approvers:
    """The approver check: `allowed` are approvers, everyone else is not in the channel;
    `broken` answers as when Slack cannot be asked."""

    def __init__(self, *allowed: str, broken: bool = False) -> None:
        self.allowed = set(allowed)
        self.broken = broken

    async def approver_verdict(self, user_id: str, *, grants: str | None = None) -> ApproverVerdict:
        if self.broken:
            raise ApproverCheckUnavailable("Slack is down")
        return ApproverVerdict.APPROVER if user_id in self.allowed else ApproverVerdict.NOT_MEMBER
