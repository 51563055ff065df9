"""Connect's licence seats in words: the line on an approval card and `/connect-user seats`.

Connect enforces the seat limit when someone logs in for the first time, not when the account is
created, so a full licence is a warning for the approver, never a reason to block."""

from __future__ import annotations

from typing import assert_never

from bot.slack.ui.describe import account_role, person_text
from bot.slack.ui.ids import (
    ACTION_REQUEST_LOCK,
    ACTION_SEATS_NEXT_PAGE,
    ACTION_SEATS_PAGE,
    SEATS_PAGE_BLOCK,
)
from bot.slack.ui.kit import (
    Block,
    Message,
    button,
    context,
    md,
    message,
    section_md,
    section_plain,
)
from bot.slack.ui.refusals import approvers_only_refusal
from bot.slack.ui.values import is_account_guid
from bot.workflow.models import Account, IdleAccounts, SeatCount
from bot.workflow.outcomes import Refusal
from bot.workflow.seats import SeatsOutcome, SeatsProblem


def seats_in_use(seats: SeatCount) -> str:
    """ "12 of 50 seats in use", "12 seats in use (no limit)", "12 seats in use"."""
    noun = "seat" if seats.in_use == 1 and not seats.limit else "seats"
    if seats.limit:
        return f"{seats.in_use} of {seats.limit} seats in use"
    if seats.limit == 0:
        return f"{seats.in_use} {noun} in use (the licence has no user limit)"
    return f"{seats.in_use} {noun} in use"


def full_warning(seats: SeatCount) -> str:
    """The warning on a card when no seat is free (words only: the approver may approve)."""
    return f"{seats_in_use(seats)}: this person will not be able to log in until a seat is freed"


def seat_blocks(seats: SeatCount | None) -> list[Block]:
    """The seat line of a pending new-account card: nothing when the seats cannot be read."""
    if seats is None:
        return []
    if seats.full:
        return [
            section_md(
                f":warning: {full_warning(seats)}. You may still approve: the account is "
                "created, and takes a seat when one is free."
            )
        ]
    if seats.limit:
        line = f"Seats: {seats.in_use} of {seats.limit} in use"
    elif seats.limit == 0:
        line = f"Seats: {seats.in_use} in use (the licence has no user limit)"
    else:
        line = f"Seats: {seats.in_use} in use"
    return [context(md(line))]


def unlock_seat_blocks(seats: SeatCount | None) -> list[Block]:
    """The seat line of a pending unlock: unlocking takes a seat at once, and Connect refuses
    it when none is free (nothing when the seats cannot be read)."""
    if seats is None:
        return []
    if seats.full:
        return [
            section_md(
                f":warning: {seats_in_use(seats)}: Connect will refuse to unlock this account "
                "until a seat is freed."
            )
        ]
    return seat_blocks(seats)


def seats_message(outcome: SeatsOutcome) -> Message:
    """The answer to `/connect-user seats` (approvers only)."""
    if outcome.seats is None:
        text = _problem_text(outcome.problem or SeatsProblem.CONNECT_GARBAGE)
        return message(text, [section_md(text)])
    seats = outcome.seats
    lines = [f"*Connect licence seats*: {seats_in_use(seats)}"]
    if seats.free is not None:
        lines.append(f"• Free: {seats.free}")
    lines.append(f"• Inactive accounts (no seat): {seats.inactive}")
    lines.append(f"• Locked accounts (no seat): {seats.locked}")
    blocks: list[Block] = [section_md("\n".join(lines))]
    if seats.full:
        blocks.append(
            section_md(
                ":warning: No seat is free: people whose accounts are new will not be able to "
                "log in until a seat is freed (a Connect administrator can lock an unused "
                "account, or extend the licence)."
            )
        )
    window = (
        f"active in the last {seats.activity_days} days"
        if seats.activity_days
        else "recently active"
    )
    blocks.append(
        context(
            md(
                f"An account takes a seat when it is unlocked and {window}. Connect enforces "
                "the limit when someone logs in for the first time, not when the account is "
                "created."
            )
        )
    )
    blocks.extend(idle_blocks(outcome.idle))
    return message(f"Connect licence seats: {seats_in_use(seats)}", blocks)


def idle_blocks(idle: IdleAccounts | None) -> list[Block]:
    """Licensed accounts nobody used lately, oldest first, each with Lock (a lock request
    through the approval gate), and the buttons to the other pages."""
    if idle is None:
        return [
            context(
                md(
                    "I couldn't list the licensed accounts nobody used lately just now. "
                    "Please try again in a minute."
                )
            )
        ]
    days = f"{idle.idle_days} day{'s' if idle.idle_days != 1 else ''}"
    if not idle.total:
        return [
            section_md(f":white_check_mark: Every licensed account was used in the last {days}.")
        ]
    title = f"*Licensed accounts nobody used for {days}* ({idle.total}), oldest first"
    if idle.pages > 1:
        title += f" · page {idle.page} of {idle.pages}"
    blocks: list[Block] = [
        section_md(title),
        context(
            md(
                "Each takes a seat. *Lock* asks the approvers to lock it: a locked account "
                "cannot log in, keeps its content, and frees its seat."
            )
        ),
    ]
    blocks.extend(_idle_row(account) for account in idle.accounts)
    pages: list[dict[str, object]] = []
    if idle.page > 1:
        pages.append(button("Previous", action_id=ACTION_SEATS_PAGE, value=str(idle.page - 1)))
    if idle.page < idle.pages:
        pages.append(button("Next", action_id=ACTION_SEATS_NEXT_PAGE, value=str(idle.page + 1)))
    if pages:
        blocks.append({"type": "actions", "block_id": SEATS_PAGE_BLOCK, "elements": pages})
    return blocks


def _idle_row(account: Account) -> Block:
    # Plain text (names are untrusted): the date as Connect's clock says, in UTC.
    when = account.active_time.strftime("%Y-%m-%d") if account.active_time else "never"
    text = person_text(account.full_name, account.username, account.email)
    row = section_plain(f"{text}\nLast active: {when} · Role: {account_role(account.user_role)}")
    if is_account_guid(account.guid):
        row["accessory"] = button("Lock", action_id=ACTION_REQUEST_LOCK, value=account.guid)
    return row


def _problem_text(problem: SeatsProblem) -> str:
    match problem:
        case SeatsProblem.KEY_CANNOT_READ:
            return (
                "I can't read Connect's licence seats: the bot's Connect API key is not an "
                "administrator's, and only an administrator's key may count them. "
                "`connect-user-bot check` says what the key can do."
            )
        case SeatsProblem.CONNECT_UNAVAILABLE:
            return (
                "Connect did not answer when I asked for the seat counts. Please try again in "
                "a minute."
            )
        case SeatsProblem.CONNECT_REFUSED:
            return (
                "Connect refused to give me the seat counts. The bot's administrator can find "
                "why in its log."
            )
        case SeatsProblem.CONNECT_GARBAGE:
            return (
                "Connect gave an answer I could not read when I asked for the seat counts. "
                "Please try again later."
            )
        case _:
            assert_never(problem)


def seats_refusal(reason: Refusal, *, approver_channel: str) -> Message:
    """Why `/connect-user seats` shows nothing to this person."""
    return approvers_only_refusal(
        reason,
        approver_channel=approver_channel,
        what="see Connect's licence seats",
        decider_what="see Connect's licence seats",
    )
