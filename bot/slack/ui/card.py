"""The approval card in the approver channel, rendered from the request's state: re-rendered
and sent with chat.update whenever the state changes, so it never holds state of its own."""

from __future__ import annotations

from typing import Any, assert_never

from bot.slack.ui.buttons import decision_actions, lock_or_keep_actions, retry_actions
from bot.slack.ui.describe import (
    approval_count_blocks,
    approved_by,
    approved_so_far,
    decided,
    granted_notes,
    guid_blocks,
    outcome_note,
    person_fields,
    role_lines,
    status_words,
    step_blocks,
    subject_blocks,
)
from bot.slack.ui.ids import APPROVAL_ACTIONS_BLOCK, RETRY_ACTIONS_BLOCK
from bot.slack.ui.kit import (
    Block,
    Message,
    context,
    header,
    md,
    message,
    plain,
    section_md,
    section_plain,
)
from bot.slack.ui.seats import seat_blocks, unlock_seat_blocks
from bot.slack.ui.text import (
    ERROR,
    GUID,
    LONG_TEXT,
    NAME,
    REASON,
    USERNAME,
    clip,
    escape_mrkdwn,
    fallback_value,
    mention,
    slack_date,
)
from bot.workflow.approvals import ApprovalsRequired
from bot.workflow.models import (
    LOCK_KINDS,
    ProvisioningRequest,
    RequestKind,
    SeatCount,
    StepAction,
    StepStatus,
    filed_by_bot,
)
from bot.workflow.roles import role_label
from bot.workflow.states import RequestState


def approval_card(
    req: ProvisioningRequest,
    *,
    connect_url: str,
    seats: SeatCount | None = None,
    approvals: ApprovalsRequired | None = None,
) -> Message:
    """The approver-channel card, rendered from the request's state (re-render to update).

    `seats`: Connect's licence seats, shown while a new-account request waits (None: no seat
    line; a role change takes no new seat). `approvals`: how many approvals each role needs
    now (APPROVALS_REQUIRED), shown with those given while it waits."""
    if req.kind is RequestKind.NEW_GROUP:
        return _group_card(req, connect_url=connect_url, approvals=approvals)
    if req.kind is RequestKind.ROLE_CHANGE:
        title = "Connect role change request"
        asked = f"{mention(req.requester_id)} asks for another Posit Connect role for:"
    elif req.kind is RequestKind.JOIN_GROUPS:
        title = "Connect groups request"
        asked = f"{mention(req.requester_id)} asks for Posit Connect groups for:"
    elif filed_by_bot(req.requester_id):
        title = "Deactivated in Slack"
        name = clip(req.full_name, NAME) or clip(req.username, USERNAME)
        asked = (
            f"{escape_mrkdwn(name)} was deactivated in Slack; their Connect account is still "
            "active. Lock it?"
        )
    elif req.kind is RequestKind.LOCK:
        title = "Connect account lock request"
        asked = f"{mention(req.requester_id)} asks to lock the Posit Connect account of:"
    elif req.kind is RequestKind.UNLOCK:
        title = "Connect account unlock request"
        asked = f"{mention(req.requester_id)} asks to unlock the Posit Connect account of:"
    elif req.workflow_execution_id:
        # The step's inputs name who asked; Slack does not say who ran the workflow.
        title = "Connect account request"
        asked = (
            "A Workflow Builder step asks for a Posit Connect account for the person below; "
            f"the workflow names {mention(req.requester_id)} as who asked:"
        )
    else:
        title = "Connect account request"
        asked = f"{mention(req.requester_id)} asks for a Posit Connect account for:"
    blocks: list[Block] = [
        header(title),
        section_md(asked),
        person_fields(req.full_name, req.username, req.email),
        # The bot's own question names the person already (deactivated: they decide nothing).
        *([] if filed_by_bot(req.requester_id) else subject_blocks(req)),
        section_plain(role_lines(req)),
        section_plain(
            "Justification:\n" + (clip(req.justification, LONG_TEXT, multiline=True) or "(none)")
        ),
    ]
    meta: list[dict[str, Any]] = []
    if req.created_at:
        meta.append(md(f"Requested {slack_date(req.created_at)}"))
    meta.append(plain(f"Request {clip(req.id, GUID)}"))
    blocks.append(context(*meta))
    blocks.extend(step_blocks(req))
    if req.state is RequestState.PENDING and req.kind is RequestKind.NEW_ACCOUNT:
        blocks.extend(seat_blocks(seats))
    elif req.state is RequestState.PENDING and req.kind is RequestKind.UNLOCK:
        blocks.extend(unlock_seat_blocks(seats))
    blocks.extend(_state_blocks(req, connect_url, approvals or ApprovalsRequired()))
    fallback = f"{title} for {fallback_value(req.username)}: {status_words(req.state)}"
    return message(fallback, blocks)


def _group_card(
    req: ProvisioningRequest, *, connect_url: str, approvals: ApprovalsRequired | None
) -> Message:
    """The card of a request to bring a directory group into Connect (there is no person)."""
    title = "Connect group request"
    blocks: list[Block] = [
        header(title),
        section_md(
            f"{mention(req.requester_id)} asks to bring a directory group into Posit Connect:"
        ),
        section_plain(role_lines(req)),
        section_plain(
            "Justification:\n" + (clip(req.justification, LONG_TEXT, multiline=True) or "(none)")
        ),
    ]
    meta: list[dict[str, Any]] = []
    if req.created_at:
        meta.append(md(f"Requested {slack_date(req.created_at)}"))
    meta.append(plain(f"Request {clip(req.id, GUID)}"))
    blocks.append(context(*meta))
    blocks.extend(step_blocks(req))
    blocks.extend(_state_blocks(req, connect_url, approvals or ApprovalsRequired()))
    status = (
        "was in Connect already"
        if req.state is RequestState.ALREADY_EXISTS
        else status_words(req.state)
    )
    fallback = f"{title} for {fallback_value(req.group_name)}: {status}"
    return message(fallback, blocks)


def _approved_before(req: ProvisioningRequest) -> list[Block]:
    """Approvals given before a denial ended the request (any denial does)."""
    names = approved_so_far(req)
    return [context(md(f"Approved before the denial by {names}"))] if names else []


def _doing(req: ProvisioningRequest, *, done: bool) -> str:
    """The step under way, as "Creating the account" or (done) "the account was created"."""
    if req.kind is RequestKind.LOCK:
        return "the account was locked" if done else "Locking the account"
    if req.kind is RequestKind.UNLOCK:
        return "the account was unlocked" if done else "Unlocking the account"
    if req.kind is RequestKind.NEW_GROUP:
        return "the group was brought in" if done else "Bringing the group into Connect"
    create = req.step(StepAction.CREATE_ACCOUNT)
    if req.kind is RequestKind.NEW_ACCOUNT and (
        create is None or create.status is not StepStatus.DONE
    ):
        return "the account was created" if done else "Creating the account"
    role_step = req.step(StepAction.SET_ROLE)
    if req.membership_steps and (role_step is None or role_step.status is StepStatus.DONE):
        return "the account was added to its groups" if done else "Adding the account to groups"
    role = role_label(req.role_granted)
    return f"the role was set to {role}" if done else f"Setting the role to {role}"


def _state_blocks(
    req: ProvisioningRequest, connect_url: str, required: ApprovalsRequired
) -> list[Block]:
    """What the card says under the request: the buttons while pending, else what happened."""
    state = req.state
    match state:
        case RequestState.PENDING:
            blocks: list[Block] = approval_count_blocks(req, required)
            if req.last_error:
                blocks.append(
                    section_plain(
                        "⚠ The last attempt failed: " + clip(req.last_error, ERROR, multiline=True)
                    )
                )
            if filed_by_bot(req.requester_id):
                blocks.append(lock_or_keep_actions(req.id, block_id=APPROVAL_ACTIONS_BLOCK))
            else:
                blocks.append(decision_actions(req, block_id=APPROVAL_ACTIONS_BLOCK))
            return blocks
        case RequestState.PROVISIONING if req.last_error:
            # The PUT's outcome is unknown: no buttons until it is settled, and say why.
            return [
                section_md(
                    f":mag: Checking whether {_doing(req, done=True)}… "
                    f"(approved by {approved_by(req)})"
                ),
                section_plain(clip(req.last_error, ERROR, multiline=True)),
            ]
        case RequestState.PROVISIONING:
            return [
                section_md(
                    f":hourglass_flowing_sand: {_doing(req, done=False)}… "
                    f"(approved by {approved_by(req)})"
                ),
                *granted_notes(req),
            ]
        case RequestState.APPROVED if req.kind in LOCK_KINDS:
            verb = "locked" if req.kind is RequestKind.LOCK else "unlocked"
            return [
                section_md(
                    f":white_check_mark: Approved by {decided(req)}; the account is {verb}."
                ),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url),
            ]
        case RequestState.DENIED if filed_by_bot(req.requester_id):
            return [
                section_md(f":ok_hand: Kept by {decided(req)}: the account stays active."),
            ]
        case RequestState.CANCELLED if filed_by_bot(req.requester_id):
            return [
                section_md(
                    f":leftwards_arrow_with_hook: {mention(req.subject_id)} was reactivated in "
                    "Slack before anyone decided: nothing to lock."
                )
            ]
        case RequestState.APPROVED:
            done = (
                f"the role is now {role_label(req.role_granted)}"
                if req.kind is RequestKind.ROLE_CHANGE
                else "the group is now in Posit Connect"
                if req.kind is RequestKind.NEW_GROUP
                else "the account was added to its groups"
                if req.kind is RequestKind.JOIN_GROUPS
                else "the account was created"
                + (f" with the role {role_label(req.role_granted)}" if req.role_granted else "")
            )
            return [
                section_md(f":white_check_mark: Approved by {approved_by(req)}; {done}."),
                *granted_notes(req),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url, person=not req.about_group),
            ]
        case RequestState.ALREADY_EXISTS:
            there = (
                f"The group {clip(req.group_name, NAME)} was in Posit Connect already."
                if req.kind is RequestKind.NEW_GROUP
                else f"{clip(req.username, USERNAME)} already had an account."
            )
            return [
                section_plain(there),
                section_md(
                    f":information_source: Approved by {approved_by(req)}; nothing was created."
                ),
                *granted_notes(req),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url, person=not req.about_group),
            ]
        case RequestState.DENIED:
            return [
                section_md(f":no_entry_sign: Denied by {decided(req)}"),
                section_plain(
                    "Reason: " + (clip(req.deny_reason, REASON, multiline=True) or "(none given)")
                ),
                *_approved_before(req),
            ]
        case RequestState.EXPIRED:
            when = f" {slack_date(req.updated_at)}" if req.updated_at else ""
            so_far = approved_so_far(req)
            why = (
                f"it did not get every approval it needed in time (approved by {so_far})"
                if so_far
                else "nobody approved or denied it in time"
            )
            return [
                section_md(
                    f":hourglass: Expired{when}: {why}, so it can no longer be decided. The "
                    "requester can ask again."
                )
            ]
        case RequestState.CANCELLED:
            return [
                section_md(
                    f":heavy_multiplication_x: Cancelled by {decided(req)}; "
                    "there is nothing left to decide."
                )
            ]
        case RequestState.INCOMPLETE:
            return [
                section_md(f":warning: Approved by {approved_by(req)}, but a step failed."),
                section_plain(clip(req.last_error, ERROR, multiline=True)),
                retry_actions(req.id, block_id=RETRY_ACTIONS_BLOCK),
                *guid_blocks(req.connect_guid, connect_url, person=not req.about_group),
            ]
        case RequestState.CLOSED:
            return [
                section_md(
                    f":heavy_minus_sign: Approved by {approved_by(req)}; a step failed and "
                    f"{mention(req.closed_by)} closed the request as it stood."
                ),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url, person=not req.about_group),
            ]
        case _:
            assert_never(state)
