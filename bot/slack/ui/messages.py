"""Messages about requests: the usage, the requester's confirmation and outcome, the welcome to
the new account holder, reminders in the card's thread, a duplicate request, a cancellation and
the note on an approver's Home tab after they decided there."""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from bot.slack.command import MAX_ENTRIES, PREFIX_MAX_LENGTH, UsageProblem
from bot.slack.ui.buttons import cancel_button
from bot.slack.ui.describe import (
    access_summary,
    approved_by,
    approved_so_far,
    decided,
    granted_notes,
    guid_blocks,
    kind_words,
    mentions,
    outcome_note,
    permalink_block,
    status_words,
    subject_name,
    who,
)
from bot.slack.ui.ids import CANCEL_ACTIONS_BLOCK
from bot.slack.ui.kit import Block, Message, context, md, message, plain, section_md, section_plain
from bot.slack.ui.text import (
    ERROR,
    REASON,
    USERNAME,
    aware,
    clip,
    duration,
    fallback_value,
    link_url,
    mention,
)
from bot.workflow.approvals import approvals_for, approvers_of
from bot.workflow.models import ProvisioningRequest, RequestKind
from bot.workflow.roles import role_label
from bot.workflow.states import RequestState

_USAGE_MD = (
    "*Usage*\n"
    "• `/connect-user search &lt;prefix&gt;`: find people in the directory whose name, "
    "username or email starts with the prefix, and request a Posit Connect account for them, "
    "or a new role for someone who has one. Example: `/connect-user search jan`\n"
    "• `/connect-user group search &lt;prefix&gt;`: find directory groups whose name starts "
    "with the prefix, and request one that is not in Posit Connect yet\n"
    "• `/connect-user request`: ask for your own Posit Connect account (found in the directory by "
    "the email on your Slack profile)\n"
    "• `/connect-user request alice bob carol@example.com`: ask for accounts for several people "
    f"at once (up to {MAX_ENTRIES}, by exact username or email)\n"
    "• `/connect-user status`: your own requests and what became of them; cancel one that is "
    "still waiting\n"
    "• `/connect-user pending`: requests waiting for a decision, oldest first (approvers only)\n"
    "• `/connect-user seats`: Connect's licence seats in use, the limit, how many accounts "
    "are inactive or locked, and the licensed accounts nobody used lately (approvers only)\n"
    "• `/connect-user lock &lt;username&gt; &lt;why&gt;` and `/connect-user unlock "
    "&lt;username&gt; &lt;why&gt;`: ask the approvers to lock or unlock an existing Connect "
    "account (its exact username). Example: `/connect-user lock ana.lima Left the company`\n"
    "• `/connect-user help`: show this message\n"
    "The app's *Home* tab shows the same lists."
)


def usage_problem_text(problem: UsageProblem, typed: str = "") -> str:
    """What was wrong with the command, in plain text (`typed`: the user's word it is about)."""
    match problem:
        case UsageProblem.UNKNOWN_SUBCOMMAND:
            return f"unknown subcommand `{typed}`"
        case UsageProblem.TAKES_NOTHING:
            return f"`{typed}` takes nothing after it"
        case UsageProblem.SEARCH_WITHOUT_PREFIX:
            return "search needs a prefix, e.g. `/connect-user search jan`"
        case UsageProblem.PREFIX_IS_A_MENTION:
            return "search for part of a name, username or email, not a Slack mention or link"
        case UsageProblem.PREFIX_HAS_CONTROL_CHARACTERS:
            return "the search prefix contains control characters"
        case UsageProblem.PREFIX_TOO_LONG:
            return f"the search prefix is longer than {PREFIX_MAX_LENGTH} characters"
        case UsageProblem.TOO_MANY_ENTRIES:
            return f"request takes at most {MAX_ENTRIES} people at once: split the list"
        case UsageProblem.ENTRY_IS_A_MENTION:
            return "name people by their username or email, not a Slack mention"
        case UsageProblem.ENTRY_NOT_TEXT:
            return "a name in the list is not a username or an email"
        case UsageProblem.LOCK_WITHOUT_USERNAME:
            return (
                f"`{typed}` needs the account's exact Connect username and why, e.g. "
                f"`/connect-user {typed} ana.lima Left the company`"
            )
        case UsageProblem.LOCK_WITHOUT_REASON:
            return (
                f"please say why after the username, e.g. "
                f"`/connect-user {typed} ana.lima Left the company`"
            )
        case _:
            assert_never(problem)


def usage_message(problem: UsageProblem | None = None, typed: str = "") -> Message:
    """Usage, after what was wrong with the command (plain text: it may quote the user)."""
    blocks: list[Block] = []
    fallback = (
        "Usage: /connect-user search &lt;prefix&gt;, /connect-user group search &lt;prefix&gt;, "
        "/connect-user request, /connect-user status, /connect-user pending, /connect-user seats, "
        "/connect-user lock|unlock &lt;username&gt; &lt;why&gt;, or /connect-user help"
    )
    reason = usage_problem_text(problem, typed) if problem is not None else None
    if reason:
        blocks.append(section_plain(clip(reason, (500, 2000))))
        fallback = f"{fallback_value(reason)}. {fallback}"
    blocks.append(section_md(_USAGE_MD))
    return message(fallback, blocks)


def requester_confirmation(req: ProvisioningRequest, *, card_permalink: str | None) -> Message:
    """Replaces the requester's ephemeral search results once the card is posted."""
    blocks = [
        section_md(":outbox_tray: Your request was sent to the approvers:"),
        section_plain(f"{who(req)}\n{access_summary(req)}"),
        context(md("You will get a direct message when someone decides.")),
        *permalink_block(card_permalink),
    ]
    if req.state is RequestState.PENDING:
        blocks.append(
            {
                "type": "actions",
                "block_id": CANCEL_ACTIONS_BLOCK,
                "elements": [cancel_button(req)],
            }
        )
    return message(
        f"Your request for {fallback_value(subject_name(req))} was sent to the approvers", blocks
    )


def requester_card_failed(req: ProvisioningRequest) -> Message:
    """The request is stored, but the approver channel could not be reached: say so, plainly."""
    return message(
        f"Your request for {fallback_value(subject_name(req))} is saved, "
        "but approvers were not told",
        [
            section_md(
                ":warning: Your request is saved, but I couldn't post it to the approver channel. "
                "Please tell a Connect administrator: `connect-user-bot check` shows why."
            ),
            section_plain(who(req)),
        ],
    )


def duplicate_request_message(
    existing: ProvisioningRequest, *, card_permalink: str | None
) -> Message:
    status = status_words(existing.state)
    return message(
        f"There is already a request for {fallback_value(subject_name(existing))} ({status})",
        [
            section_md(
                f":repeat: {mention(existing.requester_id)} already asked for "
                f"{kind_words(existing.kind)} for this "
                f"{'group' if existing.about_group else 'person'}; that request is {status}:"
            ),
            section_plain(who(existing)),
            *permalink_block(card_permalink),
        ],
    )


def requester_outcome_message(req: ProvisioningRequest, *, connect_url: str) -> Message:
    """The DM telling the requester what became of their request."""
    user = fallback_value(subject_name(req))
    state = req.state
    extra: list[Block] = []
    match state:
        case RequestState.APPROVED if req.kind in (RequestKind.LOCK, RequestKind.UNLOCK):
            verb = "locked" if req.kind is RequestKind.LOCK else "unlocked"
            fallback = f"The Connect account of {user} was {verb}"
            line = (
                f":white_check_mark: Your request was approved by {decided(req)}. The account "
                f"is now {verb}:"
            )
            extra = [*outcome_note(req), *guid_blocks(req.connect_guid, connect_url)]
        case RequestState.APPROVED if req.kind is RequestKind.ROLE_CHANGE:
            fallback = f"Your role change for {user} was approved"
            line = (
                f":white_check_mark: Your request was approved by {approved_by(req)}. The role is "
                f"now {role_label(req.role_granted)}:"
            )
            extra = [
                *granted_notes(req),
                *guid_blocks(req.connect_guid, connect_url, person=not req.about_group),
            ]
        case RequestState.APPROVED if req.kind is RequestKind.JOIN_GROUPS:
            fallback = f"Your request for {user} to join groups was approved"
            line = (
                f":white_check_mark: Your request was approved by {approved_by(req)}. The "
                "account was added to its groups:"
            )
            extra = [*granted_notes(req), *guid_blocks(req.connect_guid, connect_url)]
        case RequestState.APPROVED if req.kind is RequestKind.NEW_GROUP:
            fallback = f"Your request for the group {user} was approved"
            line = (
                f":white_check_mark: Your request was approved by {approved_by(req)}. The group "
                "is now in Posit Connect:"
            )
            extra = [
                *granted_notes(req),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url, person=False),
            ]
        case RequestState.ALREADY_EXISTS if req.kind is RequestKind.NEW_GROUP:
            fallback = f"The group {user} was in Posit Connect already"
            line = ":information_source: This group was in Posit Connect already:"
            extra = [
                *granted_notes(req),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url, person=False),
            ]
        case RequestState.APPROVED:
            fallback = f"Your request for {user} was approved"
            role = f" with the role {role_label(req.role_granted)}" if req.role_granted else ""
            line = (
                f":white_check_mark: Your request was approved by {approved_by(req)}. "
                f"Account created{role}:"
            )
            extra = [
                *granted_notes(req),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url, person=not req.about_group),
            ]
        case RequestState.ALREADY_EXISTS:
            fallback = f"{user} already had a Posit Connect account"
            line = ":information_source: This person already had a Posit Connect account:"
            extra = [
                *granted_notes(req),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url, person=not req.about_group),
            ]
        case RequestState.DENIED:
            fallback = f"Your request for {user} was denied"
            line = f":no_entry_sign: Your request was denied by {decided(req)}:"
            reason = clip(req.deny_reason, REASON, multiline=True) or "(none given)"
            extra = [section_plain(f"Reason: {reason}")]
        case RequestState.PENDING if req.raised_by:
            fallback = f"Your request for {user} now asks for {role_label(req.role_asked)}"
            line = (
                f":arrow_up: {mention(req.raised_by)} would grant {role_label(req.role_asked)} "
                f"instead of {role_label(req.raised_from)}, the role you asked for. That is a "
                "new question: the request waits for an approval of that role."
            )
        case RequestState.CLOSED:
            fallback = f"Your request for {user} was closed incomplete"
            line = (
                ":heavy_minus_sign: Your request was approved, but a step failed and an approver "
                "closed it as it stood:"
            )
            extra = [
                *granted_notes(req),
                *outcome_note(req),
                *guid_blocks(req.connect_guid, connect_url, person=not req.about_group),
            ]
        case RequestState.INCOMPLETE:
            fallback = f"Your request for {user} is incomplete"
            line = (
                ":warning: Your request was approved, but a step failed; the approvers can "
                "retry it."
            )
            extra = [
                *granted_notes(req),
                section_plain(f"Error: {clip(req.last_error, ERROR, multiline=True)}"),
            ]
        case RequestState.PENDING | RequestState.PROVISIONING if req.last_error:
            fallback = f"Your request for {user} is still pending: carrying it out failed"
            line = (
                ":warning: Carrying out your request failed, so it is still pending. "
                "The approvers can try again; an administrator may need to fix the bot first."
            )
            extra = [section_plain(f"Error: {clip(req.last_error, ERROR, multiline=True)}")]
        case RequestState.PENDING | RequestState.PROVISIONING:
            status = status_words(state)
            fallback = f"Your request for {user}: {status}"
            line = f"Your request is {status}:"
        case RequestState.EXPIRED:
            fallback = f"Your request for {user} expired"
            waited = ""
            if req.created_at and req.updated_at:
                waited = f" within {duration(aware(req.updated_at) - aware(req.created_at))}"
            so_far = approved_so_far(req)
            why = (
                f"it did not get every approval it needed{waited} (approved by {so_far})"
                if so_far
                else f"nobody approved or denied it{waited}"
            )
            line = (
                f":hourglass: Your request expired: {why}. "
                "You can ask again with `/connect-user search`."
            )
        case RequestState.CANCELLED:
            fallback = f"Your request for {user} was cancelled"
            line = ":heavy_multiplication_x: Your request was cancelled."
        case _:
            assert_never(state)
    return message(fallback, [section_md(line), section_plain(who(req)), *extra])


def welcome_message(
    *, connect_url: str, username: str, role: str | None = None, role_change: bool = False
) -> Message:
    """The DM to the person a request was for: their new account, or their new role."""
    url = link_url(connect_url.rstrip("/") + "/connect/")
    details = f"Username: {clip(username, USERNAME)}"
    if role:
        details += f" · Role: {role_label(role)}"
    if role_change:
        fallback = f"Your Posit Connect role is now {role_label(role)}"
        line = (
            f":arrow_up_down: Your Posit Connect role is now {role_label(role)}: "
            f"<{url}|Open Connect>"
        )
    else:
        fallback = "Your Posit Connect account is ready"
        line = f":wave: Welcome! Your Posit Connect account is ready: <{url}|Open Connect>"
    return message(fallback, [section_md(line), context(plain(details))])


def approver_reminder(req: ProvisioningRequest, *, now: datetime) -> Message:
    """Posted in the card's thread when a request has waited too long."""
    waited = ""
    if req.created_at:
        waited = f" for {duration(aware(now) - aware(req.created_at))}"
    text = (
        f":alarm_clock: This request has been waiting{waited}. "
        "Approvers: please approve or deny it with the buttons on the card above."
    )
    return message(
        f"Reminder: the request for {fallback_value(subject_name(req))} is still waiting{waited}",
        [section_md(text)],
    )


def escalation_message(
    req: ProvisioningRequest, *, card_permalink: str | None, now: datetime
) -> Message:
    """Posted once in the escalation channel when nobody decided a request in time."""
    waited = ""
    if req.created_at:
        waited = f" for {duration(aware(now) - aware(req.created_at))}"
    text = (
        f":rotating_light: A request has waited{waited} and no approver has decided it. "
        f"{mention(req.requester_id)} asked for it:"
    )
    return message(
        f"Escalated: the request for {fallback_value(subject_name(req))} has waited{waited}",
        [
            section_md(text),
            section_plain(f"{who(req)}\n{access_summary(req)}"),
            *permalink_block(card_permalink),
        ],
    )


def cancelled_message(req: ProvisioningRequest) -> Message:
    """The answer to the requester's own Cancel click."""
    return message(
        f"You cancelled your request for {fallback_value(subject_name(req))}",
        [
            section_md(
                ":heavy_multiplication_x: You cancelled your request; the approvers' card says so."
            ),
            section_plain(who(req)),
        ],
    )


def decision_notice(req: ProvisioningRequest) -> Message:
    """Shown on the approver's Home tab after their click there decided a request."""
    return message(
        f"Your decision on the request for {fallback_value(subject_name(req))} was recorded",
        [
            section_md(":ballot_box_with_check: Your decision was recorded:"),
            section_plain(f"{who(req)}: {status_words(req.state)}\n{access_summary(req)}"),
        ],
    )


def role_raised_message(req: ProvisioningRequest) -> Message:
    """To the approver who chose a role above the one asked: nothing was approved, the request
    now asks for that role and waits for an approval (another click, theirs or another's)."""
    role = role_label(req.role_asked)
    return message(
        f"The request for {fallback_value(subject_name(req))} now asks for {role}",
        [
            section_md(
                f":arrow_up: You chose {role}, above the role asked for. That is a new question, "
                f"so nothing was approved yet: the request now asks for {role} and waits for an "
                "approval (press Approve again to approve it)."
            ),
            section_plain(f"{who(req)}\n{access_summary(req)}"),
        ],
    )


def approval_counted_message(req: ProvisioningRequest, *, needed: int, role: str | None) -> Message:
    """To an approver whose approval of `role` was recorded but is not the last one it needs."""
    names = approvers_of(approvals_for(req, role))
    role_text = role_label(role)
    left = max(0, needed - len(names))
    more = "one more approver" if left == 1 else f"{left} more approvers"
    return message(
        f"Your approval of the request for {fallback_value(subject_name(req))} was recorded",
        [
            section_md(
                f":ballot_box_with_check: Your approval was recorded: {len(names)} of {needed} "
                f"approvals for {role_text} ({mentions(names)}). Nothing changes in Connect until "
                f"{more} approve."
            ),
            section_plain(f"{who(req)}\n{access_summary(req)}"),
        ],
    )
