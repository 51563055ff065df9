"""Who may decide requests and see what only approvers see: the one check, asked of the
approver policy every time (never remembered here)."""

from __future__ import annotations

from bot.workflow.outcomes import Refusal
from bot.workflow.ports import ApproverCheckUnavailable, ApproverPolicy, ApproverVerdict

# Why someone who is not an approver is refused, in the workflow's terms.
VERDICT_REFUSALS = {
    ApproverVerdict.NOT_MEMBER: Refusal.NOT_APPROVER,
    ApproverVerdict.NOT_IN_USERGROUP: Refusal.NOT_IN_USERGROUP,
    ApproverVerdict.NOT_ADMIN_APPROVER: Refusal.NOT_ADMIN_APPROVER,
    ApproverVerdict.GUEST: Refusal.GUEST,
    ApproverVerdict.EXTERNAL: Refusal.EXTERNAL,
    ApproverVerdict.BOT: Refusal.BOT,
    ApproverVerdict.DEACTIVATED: Refusal.DEACTIVATED,
    ApproverVerdict.UNSAFE_CHANNEL: Refusal.UNSAFE_CHANNEL,
}


async def approver_refusal(
    approvers: ApproverPolicy, user_id: str, *, grants: str | None = None
) -> Refusal | None:
    """None when `user_id` is an approver now (of requests granting `grants`, when given);
    otherwise why not (CANNOT_CHECK when the policy cannot tell: never guess)."""
    try:
        verdict = await approvers.approver_verdict(user_id, grants=grants)
    except ApproverCheckUnavailable:
        return Refusal.CANNOT_CHECK
    if verdict is ApproverVerdict.APPROVER:
        return None
    return VERDICT_REFUSALS[verdict]
