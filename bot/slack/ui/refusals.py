"""Why a click, a command or a form changed nothing, in words for the person who tried.

Every renderer here matches the workflow's `Refusal` (or `FileProblem`) exhaustively: a new
reason is a type error until it has its words."""

from __future__ import annotations

from typing import Literal, assert_never

from bot.slack.ui.describe import status_words
from bot.slack.ui.kit import Block, Message, message, section_md, section_plain
from bot.slack.ui.limits import MAX_TEXT
from bot.slack.ui.text import ERROR, channel_mention, clip, escape_mrkdwn
from bot.workflow.outcomes import FileProblem, Refusal, Refused
from bot.workflow.requests import MAX_GROUPS
from bot.workflow.states import RequestState

_GENERIC = "That action could not be completed."
_BUTTON_OUTDATED = (
    "That button no longer works. Search again with `/connect-user search &lt;prefix&gt;`."
)


def refusal_message(text: str, *, detail: str | None = None) -> Message:
    """One line written by the bot (mrkdwn allowed; never pass untrusted text as `text`).

    `detail` is untrusted text (an error from Connect, a name) shown below as plain text; it is
    kept out of the fallback.
    """
    line = clip(text, (MAX_TEXT - 100, MAX_TEXT * 2), multiline=True)
    blocks: list[Block] = [section_md(line)]
    if detail:
        blocks.append(section_plain(clip(detail, ERROR, multiline=True)))
    return message(line, blocks)


def outdated_button_message() -> Message:
    """A click on a button this version of the bot did not make, or can no longer read."""
    return refusal_message(_BUTTON_OUTDATED)


# Members of the approver channel who may still not decide, because of who they are (or because
# nobody may: the channel is public).
NotADecider = Literal[
    Refusal.GUEST, Refusal.EXTERNAL, Refusal.BOT, Refusal.DEACTIVATED, Refusal.UNSAFE_CHANNEL
]


def not_a_decider(reason: NotADecider, *, what: str) -> str:
    """Why a member of the approver channel may still not decide; `what` is what they tried."""
    match reason:
        case Refusal.GUEST:
            return (
                f"Guest accounts can't {what}, even as members of the approver channel: only full "
                "members of the organisation decide."
            )
        case Refusal.EXTERNAL:
            return (
                f"People from another organisation (Slack Connect) can't {what}, even as members "
                "of the approver channel: only full members of this organisation decide."
            )
        case Refusal.BOT:
            return f"Bots and apps can't {what}."
        case Refusal.DEACTIVATED:
            return f"This Slack account is deactivated, so it can't {what}."
        case Refusal.UNSAFE_CHANNEL:
            return (
                f"Nobody can {what} right now: the approver channel is public, so anyone in the "
                "workspace could join it and approve. An administrator must make it private (or, "
                "if that is meant, allow a public approver channel in the bot's configuration)."
            )
        case _:
            assert_never(reason)


def approval_refusal(reason: Refusal, *, state: RequestState | None = None) -> Message:
    """Why a click on Approve/Deny (or a denial's form) was refused; for `ALREADY_DECIDED` pass
    the request's `state`."""
    match reason:
        case Refusal.NOT_APPROVER:
            text = "Only members of the approver channel can approve or deny requests."
        case Refusal.NOT_IN_USERGROUP:
            text = "Only members of the approvers' Slack user group can approve or deny requests."
        case Refusal.NOT_ADMIN_APPROVER:
            text = (
                "This request grants the Administrator role: only members of the Slack user group "
                "of administrator approvers can decide it."
            )
        case (
            Refusal.GUEST
            | Refusal.EXTERNAL
            | Refusal.BOT
            | Refusal.DEACTIVATED
            | Refusal.UNSAFE_CHANNEL
        ):
            text = not_a_decider(reason, what="approve or deny requests")
        case Refusal.SELF_APPROVAL:
            text = "You cannot approve your own request; another approver has to."
        case Refusal.SUBJECT:
            text = (
                "This request is for your own Connect access, so you can't decide it; another "
                "approver has to."
            )
        case Refusal.ALREADY_DECIDED if state is RequestState.EXPIRED:
            # Nobody decided an expired request: "already decided" would send people looking
            # for who.
            text = (
                "This request expired: nobody approved or denied it in time, so it can no longer "
                "be decided. The requester can ask again."
            )
        case Refusal.ALREADY_DECIDED if state is RequestState.CANCELLED:
            text = "The requester cancelled this request, so there is nothing left to decide."
        case Refusal.ALREADY_DECIDED:
            status = f" ({status_words(state)})." if state else "."
            text = "This request was already decided" + status
        case Refusal.CANNOT_CHECK:
            text = (
                "I can't check who may approve right now (Slack didn't tell me the approver "
                "channel's members). Nothing was changed; please try again in a minute."
            )
        case Refusal.NOT_FOUND:
            text = "That request no longer exists."
        case Refusal.ROLE_NOT_REQUESTABLE:
            text = (
                "That role cannot be granted through the bot (only the roles the bot is "
                "configured to grant can). Nothing was changed; choose another role."
            )
        case Refusal.ROLE_CHANGED:
            text = (
                "The request asks for another role since you opened the confirmation (an "
                "approver raised it). Nothing was approved: press Approve on the card again to "
                "see the new question."
            )
        case Refusal.ALREADY_APPROVED:
            text = (
                "Your approval of this request counts already: it needs approvals from other "
                "approvers too. The card shows how many it has."
            )
        case Refusal.NOTHING_TO_RETRY:
            status = f" ({status_words(state)})" if state else ""
            text = f"There is no failed step left to retry{status}."
        case Refusal.NOT_REQUESTER:  # a cancellation's reason: never the answer to a decision
            text = _GENERIC
        case _:
            assert_never(reason)
    return message(text, [section_md(text)])


def decision_refusal(refused: Refused) -> Message:
    """Why an Approve or Deny (from a card, the Home tab or a modal) changed nothing."""
    return approval_refusal(
        refused.reason, state=refused.request.state if refused.request else None
    )


def cancel_refusal(reason: Refusal, *, state: RequestState | None = None) -> Message:
    """Why a Cancel click changed nothing; for `ALREADY_DECIDED` pass the request's `state`."""
    match reason:
        case Refusal.NOT_REQUESTER:
            text = "Only the person who asked for this account can cancel the request."
        case Refusal.ALREADY_DECIDED:
            status = f": it is {status_words(state)}." if state else "."
            text = "This request can no longer be cancelled" + status
        case Refusal.NOT_FOUND:
            text = "That request no longer exists."
        case (
            Refusal.SELF_APPROVAL
            | Refusal.SUBJECT
            | Refusal.NOT_APPROVER
            | Refusal.NOT_IN_USERGROUP
            | Refusal.NOT_ADMIN_APPROVER
            | Refusal.GUEST
            | Refusal.EXTERNAL
            | Refusal.BOT
            | Refusal.DEACTIVATED
            | Refusal.UNSAFE_CHANNEL
            | Refusal.CANNOT_CHECK
            | Refusal.ROLE_NOT_REQUESTABLE
            | Refusal.NOTHING_TO_RETRY
            | Refusal.ROLE_CHANGED
            | Refusal.ALREADY_APPROVED
        ):  # a decision's reasons: cancelling asks nothing of who the requester is
            text = _GENERIC
        case _:
            assert_never(reason)
    return message(text, [section_md(text)])


def pending_refusal(reason: Refusal, *, approver_channel: str) -> Message:
    """Why `/connect-user pending` shows nothing."""
    return approvers_only_refusal(
        reason,
        approver_channel=approver_channel,
        what="see the requests waiting for approval",
        decider_what="see or decide the requests waiting",
        after=" `/connect-user status` shows your own requests.",
    )


def approvers_only_refusal(
    reason: Refusal, *, approver_channel: str, what: str, decider_what: str, after: str = ""
) -> Message:
    """Why something only approvers may see (`what`) shows nothing to this person."""
    match reason:
        case Refusal.CANNOT_CHECK:
            fallback = "I can't check who may approve right now"
            text = (
                "I can't check who may approve right now (Slack didn't tell me the approver "
                "channel's members). Please try again in a minute."
            )
        case (
            Refusal.GUEST
            | Refusal.EXTERNAL
            | Refusal.BOT
            | Refusal.DEACTIVATED
            | Refusal.UNSAFE_CHANNEL
        ):
            fallback = text = not_a_decider(reason, what=decider_what)
        case (
            Refusal.NOT_APPROVER
            | Refusal.NOT_FOUND
            | Refusal.SELF_APPROVAL
            | Refusal.SUBJECT
            | Refusal.ALREADY_DECIDED
            | Refusal.NOT_REQUESTER
            | Refusal.ROLE_NOT_REQUESTABLE
            | Refusal.NOTHING_TO_RETRY
            | Refusal.ROLE_CHANGED
            | Refusal.ALREADY_APPROVED
        ):
            fallback = f"Only approvers can {what}"
            text = (
                f"Sorry, only approvers (members of {channel_mention(approver_channel)}) can "
                f"{what}.{after}"
            )
        case Refusal.NOT_IN_USERGROUP | Refusal.NOT_ADMIN_APPROVER:
            fallback = f"Only approvers can {what}"
            text = f"Sorry, only approvers (their Slack user group's members) can {what}.{after}"
        case _:
            assert_never(reason)
    return message(fallback, [section_md(text)])


LOCK_UNAVAILABLE = (
    "Locking and unlocking are unavailable: the bot's Connect API key is not an "
    "administrator's, and only an administrator's key may lock or unlock accounts. "
    "The bot's check command (connect-user-bot check) says what the key can do."
)
# Where directory groups cannot be searched (any provider but one with remote group search).
GROUPS_FROM_PROVIDER = (
    "Groups cannot be brought in from the directory on this Posit Connect server: its groups "
    "come from the login provider (or groups are switched off). Ask a Connect administrator."
)


def file_problem_message(problem: FileProblem, *, username: str) -> Message:
    """Why a request was not filed; `username` is the person it was for (untrusted)."""
    who = escape_mrkdwn(username)
    match problem:
        case FileProblem.EMPTY_JUSTIFICATION:
            text = "Please say why this person needs an account."
        case FileProblem.ALREADY_HAS_ACCOUNT:
            text = f"{who} already has a Connect account."
        case FileProblem.NOT_IN_DIRECTORY:
            text = f"{who} is no longer in the directory."
        case FileProblem.CANNOT_VERIFY:
            text = (
                f"Connect could not confirm {who} in the directory just now, so nothing was "
                "filed. Please try again in a minute."
            )
        case FileProblem.ROLE_NOT_REQUESTABLE:
            text = "That role cannot be asked for here. Please choose one of the roles offered."
        case FileProblem.ROLES_NOT_MANAGED:
            text = (
                "Roles cannot be changed through the bot on this server (the login provider "
                "manages them, or the bot's Connect key is not an administrator's)."
            )
        case FileProblem.NO_ACCOUNT:
            text = f"{who} has no Connect account any more."
        case FileProblem.SAME_ROLE:
            text = f"{who} already has that role."
        case FileProblem.LOCK_UNAVAILABLE:
            text = LOCK_UNAVAILABLE
        case FileProblem.ALREADY_LOCKED:
            text = f"{who}'s Connect account is locked already."
        case FileProblem.NOT_LOCKED:
            text = f"{who}'s Connect account is not locked."
        case FileProblem.GROUP_IN_CONNECT:
            text = f"The group {who} is in Posit Connect already: nothing to request."
        case FileProblem.GROUP_NOT_IN_DIRECTORY:
            text = f"No directory group is named {who} any more. Search again."
        case FileProblem.GROUP_NAME_AMBIGUOUS:
            text = (
                f"Several directory groups are named {who}, so the approvers could not tell "
                "which one you mean. Ask a Connect administrator to bring the right one in."
            )
        case FileProblem.NO_GROUP_SEARCH:
            text = GROUPS_FROM_PROVIDER
        case FileProblem.GROUPS_NOT_OFFERED:
            text = (
                "The bot cannot add people to Connect groups on this server, so nothing was "
                "filed. Send the form again without groups."
            )
        case FileProblem.GROUP_NOT_FOUND:
            text = (
                "One of the groups you chose is no longer in Posit Connect, so nothing was "
                "filed. Open the form again and choose from the groups offered."
            )
        case FileProblem.NO_GROUPS_CHOSEN:
            text = "Please choose at least one group."
        case FileProblem.TOO_MANY_GROUPS:
            text = (
                f"One request may add an account to at most {MAX_GROUPS} groups, so nothing was "
                "filed. Choose fewer, and ask for the rest in another request."
            )
        case FileProblem.GROUP_NAME_TAKEN:
            text = (
                f"Posit Connect has a group named {who} already, which is not this directory "
                "group, so it could not be brought in. Ask a Connect administrator."
            )
        case _:
            assert_never(problem)
    return refusal_message(text)
