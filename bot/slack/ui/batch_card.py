"""The approval card of a batch's part: the people asked for together, each with where their
request stands and its own Approve and Deny, and Approve all / Deny all for the part. Rendered
from the requests' state, like the single card, and re-rendered to update."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from bot.slack.ui.describe import (
    approved_by,
    approved_so_far,
    decided,
    mentions,
)
from bot.slack.ui.ids import (
    ACTION_APPROVE,
    ACTION_APPROVE_ALL,
    ACTION_CLOSE,
    ACTION_DENY,
    ACTION_DENY_ALL,
    ACTION_RETRY,
    BATCH_ACTIONS_BLOCK,
    BATCH_MEMBER_BLOCK_PREFIX,
)
from bot.slack.ui.kit import (
    Block,
    Message,
    button,
    context,
    header,
    md,
    message,
    plain,
    section_md,
    section_plain,
)
from bot.slack.ui.limits import MAX_ID
from bot.slack.ui.text import clip, fallback_value, mention, slack_date
from bot.workflow.approvals import ApprovalsRequired, approvers_of, counting
from bot.workflow.models import ProvisioningRequest
from bot.workflow.roles import role_label
from bot.workflow.states import RequestState

# Shorter than on a single card: ten people and their buttons share one message's budget.
NAME = (60, 360)
USERNAME = (60, 360)
EMAIL = (80, 480)
JUSTIFICATION = (900, 2400)
ERROR = (160, 480)


def batch_value(batch_id: str, part: int) -> str:
    """What Approve all and Deny all carry: the batch and its part."""
    return f"{batch_id}:{part}"


def batch_card(
    members: Sequence[ProvisioningRequest],
    *,
    parts: int,
    approvals: ApprovalsRequired | None = None,
) -> Message:
    """The card of one part of a batch (`members`, in filing order, at least one)."""
    required = approvals or ApprovalsRequired()
    first = members[0]
    part = first.batch_part or 0
    title = "Connect account requests"
    if parts > 1:
        title += f" (part {part + 1} of {parts})"
    blocks: list[Block] = [
        header(title),
        section_md(
            f"{mention(first.requester_id)} asks for Posit Connect accounts for "
            f"{len(members)} people:"
        ),
        section_plain(
            "Justification:\n" + (clip(first.justification, JUSTIFICATION, multiline=True) or "-")
        ),
    ]
    meta = [plain(f"Role asked: {role_label(first.role_asked)}")]
    if first.created_at:
        meta.append(md(f"Requested {slack_date(first.created_at)}"))
    blocks.append(context(*meta))
    for member in members:
        blocks.extend(_member_blocks(member, required))
    pending = [m for m in members if m.state is RequestState.PENDING]
    if pending and first.batch_id:
        value = batch_value(first.batch_id, part)
        blocks.append(
            {
                "type": "actions",
                "block_id": BATCH_ACTIONS_BLOCK,
                "elements": [
                    button(
                        f"Approve all ({len(pending)})",
                        action_id=ACTION_APPROVE_ALL,
                        value=value,
                        style="primary",
                    ),
                    button(
                        f"Deny all ({len(pending)})",
                        action_id=ACTION_DENY_ALL,
                        value=value,
                        style="danger",
                    ),
                ],
            }
        )
    done = len(members) - len(pending)
    fallback = (
        f"Connect account requests for {len(members)} people "
        f"({done} decided), starting with {fallback_value(first.username)}"
    )
    return message(fallback, blocks)


def _member_blocks(member: ProvisioningRequest, required: ApprovalsRequired) -> list[Block]:
    who = clip(member.full_name, NAME)
    user = clip(member.username, USERNAME)
    person = f"{who} ({user})" if who else user or "(no username)"
    email = clip(member.email, EMAIL)
    lines = [person, email] if email else [person]
    if member.raised_by:
        lines.append(f"Role raised by an approver from {role_label(member.raised_from)}")
    if member.state is RequestState.DENIED and member.deny_reason:
        lines.append("Reason: " + clip(member.deny_reason, ERROR))
    if member.state in (RequestState.INCOMPLETE, RequestState.PENDING) and member.last_error:
        lines.append("Last error: " + clip(member.last_error, ERROR))
    blocks: list[Block] = [
        {
            "type": "section",
            "fields": [
                plain("\n".join(line for line in lines if line)),
                md(_status(member, required)),
            ],
        }
    ]
    elements = []
    if member.state is RequestState.PENDING:
        elements = [
            button("Approve", action_id=ACTION_APPROVE, value=member.id, style="primary"),
            button("Deny", action_id=ACTION_DENY, value=member.id, style="danger"),
        ]
    elif member.state is RequestState.INCOMPLETE:
        elements = [
            button("Retry the failed step", action_id=ACTION_RETRY, value=member.id),
            button("Close as it is", action_id=ACTION_CLOSE, value=member.id),
        ]
    if elements:
        blocks.append(
            {
                "type": "actions",
                "block_id": (BATCH_MEMBER_BLOCK_PREFIX + member.id)[:MAX_ID],
                "elements": elements,
            }
        )
    return blocks


def _status(member: ProvisioningRequest, required: ApprovalsRequired) -> str:
    """Where the person's request stands, for mrkdwn (only the bot's words and mentions)."""
    state = member.state
    role = role_label(member.role_granted or member.role_asked)
    match state:
        case RequestState.PENDING:
            needed = required.needed(member.role_asked)
            names = approvers_of(counting(member))
            line = f":hourglass: Waiting · {role_label(member.role_asked)}"
            if names or needed > 1:
                line += f" · {len(names)} of {needed} approvals"
                if names:
                    line += f": {mentions(names)}"
            return line
        case RequestState.PROVISIONING:
            return f":hourglass_flowing_sand: Being carried out (approved by {approved_by(member)})"
        case RequestState.APPROVED:
            return f":white_check_mark: Approved by {approved_by(member)} · {role}"
        case RequestState.ALREADY_EXISTS:
            return (
                f":information_source: Had an account already (approved by {approved_by(member)})"
            )
        case RequestState.DENIED:
            return f":no_entry_sign: Denied by {decided(member)}"
        case RequestState.EXPIRED:
            so_far = approved_so_far(member)
            return ":hourglass: Expired" + (f" (approved by {so_far})" if so_far else "")
        case RequestState.CANCELLED:
            return f":heavy_multiplication_x: Cancelled by {decided(member)}"
        case RequestState.INCOMPLETE:
            return f":warning: Approved by {approved_by(member)}, but a step failed"
        case RequestState.CLOSED:
            return f":heavy_minus_sign: Closed with a failed step by {mention(member.closed_by)}"
        case _:
            assert_never(state)
