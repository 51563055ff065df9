"""How a person and a request read wherever they appear: names, states, who decided, the new
account's GUID and link, the link to the card."""

from __future__ import annotations

from typing import assert_never

from bot.slack.ui.kit import Block, context, md, plain, section_md
from bot.slack.ui.text import (
    EMAIL,
    ERROR,
    GUID,
    NAME,
    REASON,
    SAFE_GUID_RE,
    USERNAME,
    clip,
    connect_person_url,
    link_url,
    mention,
    slack_date,
)
from bot.workflow.approvals import (
    ApprovalsRequired,
    approvers_of,
    counting,
    current,
    deciding,
    other_roles,
)
from bot.workflow.models import (
    LOCK_KINDS,
    Approval,
    ProvisioningRequest,
    RequestKind,
    StepAction,
    StepStatus,
    SubjectLink,
)
from bot.workflow.roles import role_label
from bot.workflow.states import RequestState


def status_words(state: RequestState) -> str:
    """A request's state as the card, the lists and the messages say it."""
    match state:
        case RequestState.PENDING:
            return "waiting for an approver"
        case RequestState.PROVISIONING:
            return "being carried out in Connect"
        case RequestState.APPROVED:
            return "approved"
        case RequestState.ALREADY_EXISTS:
            return "already had an account"
        case RequestState.DENIED:
            return "denied"
        case RequestState.EXPIRED:
            return "expired"
        case RequestState.CANCELLED:
            return "cancelled"
        case RequestState.INCOMPLETE:
            return "incomplete: a step failed and waits for a retry"
        case RequestState.CLOSED:
            return "closed with a failed step"
        case _:
            assert_never(state)


def kind_words(kind: RequestKind) -> str:
    match kind:
        case RequestKind.NEW_ACCOUNT:
            return "a new account"
        case RequestKind.ROLE_CHANGE:
            return "a role change"
        case RequestKind.LOCK:
            return "locking the account"
        case RequestKind.UNLOCK:
            return "unlocking the account"
        case RequestKind.NEW_GROUP:
            return "a directory group in Connect"
        case RequestKind.JOIN_GROUPS:
            return "Connect groups"
        case _:
            assert_never(kind)


def kind_title(kind: RequestKind) -> str:
    match kind:
        case RequestKind.NEW_ACCOUNT:
            return "New account"
        case RequestKind.ROLE_CHANGE:
            return "Role change"
        case RequestKind.LOCK:
            return "Lock account"
        case RequestKind.UNLOCK:
            return "Unlock account"
        case RequestKind.NEW_GROUP:
            return "New group"
        case RequestKind.JOIN_GROUPS:
            return "Join groups"
        case _:
            assert_never(kind)


def access_summary(req: ProvisioningRequest) -> str:
    """The kind and the roles on one line (plain text), for lists and short messages:
    `New account · Role asked: Publisher · Role granted: Viewer`."""
    return " · ".join([kind_title(req.kind), *role_lines(req).splitlines()])


def step_words(action: StepAction, req: ProvisioningRequest) -> str:
    match action:
        case StepAction.CREATE_ACCOUNT:
            return "Create the account"
        case StepAction.SET_ROLE:
            return f"Set the role to {role_label(req.role_granted or req.role_asked)}"
        case StepAction.LOCK_ACCOUNT:
            return "Lock the account"
        case StepAction.UNLOCK_ACCOUNT:
            return "Unlock the account"
        case StepAction.CREATE_GROUP:
            return "Bring the group into Connect"
        case StepAction.ADD_TO_GROUP:
            return "Add the account to a group"
        case _:
            assert_never(action)


_STEP_MARKS = {
    StepStatus.PENDING: "○",
    StepStatus.DONE: "✓",
    StepStatus.FAILED: "✗",
    StepStatus.SKIPPED: "-",
}


def subject_blocks(req: ProvisioningRequest) -> list[Block]:
    """Who the person is in Slack (they may not decide their own request), or that they could
    not be matched, so approvers know the rule could not be applied."""
    link = req.subject_link
    if link is None:
        return []
    if link is SubjectLink.LINKED and req.subject_id:
        who = mention(req.subject_id)
        # Matched by the email Connect has for them: where people edit their own email, say so.
        return [context(md(f"In Slack (by the email Connect has): {who}, who may not decide it"))]
    why = {
        SubjectLink.NO_EMAIL: "the directory shows no email",
        SubjectLink.NOT_FOUND: "nobody in this workspace has their email",
        SubjectLink.UNAVAILABLE: "Slack did not answer when the request was filed",
    }.get(link, "")
    return [
        context(
            md(
                f":warning: Could not match this person to a Slack account ({why}): the bot "
                "cannot stop them from deciding their own request."
            )
        )
    ]


def group_names(req: ProvisioningRequest) -> str:
    """The Connect groups an account request adds the account to, as plain text ("" if none)."""
    return ", ".join(clip(group.name, NAME) for group in req.groups)


def role_lines(req: ProvisioningRequest) -> str:
    """The roles a request is about, as plain text: asked, granted, and before (a change); and
    the groups it adds the account to. A group request: the group; a lock or an unlock, the
    account's role (it keeps it)."""
    if req.kind in LOCK_KINDS:
        return f"Role: {account_role(req.role_before)}"
    if req.kind is RequestKind.NEW_GROUP:
        return f"Directory group: {clip(req.group_name, NAME)}"
    if req.kind is RequestKind.JOIN_GROUPS:
        return f"Role: {account_role(req.role_before)}\nGroups: {group_names(req)}"
    lines = _role_lines(req)
    if req.groups:
        lines += f"\nGroups: {group_names(req)}"
    return lines


def _role_lines(req: ProvisioningRequest) -> str:
    lines = []
    if req.kind is RequestKind.ROLE_CHANGE:
        label = "Current role" if req.state is RequestState.PENDING else "Role before"
        lines.append(f"{label}: {role_label(req.role_before)}")
    lines.append(f"Role asked: {role_label(req.role_asked)}")
    if req.raised_by and req.raised_from is not None:
        lines.append(f"(raised from {role_label(req.raised_from)} by an approver)")
    elif req.raised_by:
        lines.append("(raised by an approver)")
    if req.state is RequestState.ALREADY_EXISTS:
        if req.role_before:
            lines.append(
                f"Role in Connect: {role_label(req.role_before)} (unchanged: the account was "
                "there already)"
            )
    elif req.role_granted and req.state is RequestState.APPROVED:
        lines.append(f"Role granted: {role_label(req.role_granted)}")
    elif req.role_granted and req.state is not RequestState.PENDING:
        lines.append(f"Role approved: {role_label(req.role_granted)} (not set yet)")
    elif req.state is RequestState.APPROVED and req.role_before:
        # No role was chosen: say which one Connect gave.
        lines.append(f"Role in Connect: {role_label(req.role_before)}")
    return "\n".join(lines)


def step_blocks(req: ProvisioningRequest) -> list[Block]:
    """Each step with its status (only for requests of more than one step, or a failed one)."""
    if len(req.steps) < 2 and req.failed_step is None:
        return []
    lines = []
    for step in req.steps:
        words = step_words(step.action, req)
        if step.action is StepAction.ADD_TO_GROUP:
            words = f"Add the account to {clip(step.target_name, NAME) or 'a group'}"
        line = f"{_STEP_MARKS[step.status]} {words}: {step.status.value}"
        detail = step.error or step.note
        if detail:
            line += f" — {clip(detail, ERROR, multiline=True)}"
        lines.append(line)
    # Each step's detail is cut like an error, and all of them together like a deny reason: the
    # card must leave room for the justification and the last error within Slack's budget.
    return [context(plain(clip("\n".join(lines), REASON, multiline=True)))]


def person_text(full_name: str, username: str, email: str) -> str:
    """`Full Name` / `username · email`, each on one line (plain text)."""
    name = clip(full_name, NAME)
    user = clip(username, USERNAME) or "(no username)"
    mail = clip(email, EMAIL) or "email hidden"
    first = name or user
    return f"{first}\n{user} · {mail}"


def account_role(role: str | None) -> str:
    """An account's role as people read it ("Publisher"); never the raw value (a role the bot
    does not know reads as such); "role unknown" when Connect did not say."""
    return role_label(role) if role else "role unknown"


def account_standing(role: str | None, locked: bool) -> str:
    """`Role: Publisher` or `Role: Publisher · locked` (plain text)."""
    text = f"Role: {account_role(role)}"
    return f"{text} · locked" if locked else text


def person_fields(full_name: str, username: str, email: str) -> Block:
    return {
        "type": "section",
        "fields": [
            plain(f"Name: {clip(full_name, NAME) or '(none)'}"),
            plain(f"Username: {clip(username, USERNAME) or '(none)'}"),
            plain(f"Email: {clip(email, EMAIL) or 'hidden'}"),
        ],
    }


def subject_name(req: ProvisioningRequest) -> str:
    """What a request is about, in a word: the person's username, or the group's name."""
    if req.kind is RequestKind.NEW_GROUP:
        return req.group_name or ""
    return req.username


def who(req: ProvisioningRequest) -> str:
    """`Full Name (username)`, for plain text; a group request: `the group name`."""
    if req.kind is RequestKind.NEW_GROUP:
        return f"the group {clip(req.group_name, NAME)}"
    name = clip(req.full_name, NAME)
    user = clip(req.username, USERNAME)
    return f"{name} ({user})" if name else user or "(no username)"


def decided(req: ProvisioningRequest) -> str:
    """Who decided and when, for mrkdwn."""
    when = f" {slack_date(req.decided_at)}" if req.decided_at else ""
    return f"{mention(req.decided_by)}{when}"


def mentions(user_ids: tuple[str, ...]) -> str:
    """ "<@A>", "<@A> and <@B>", "<@A>, <@B> and <@C>"."""
    named = [mention(user_id) for user_id in user_ids]
    if len(named) < 2:
        return "".join(named) or "someone"
    return ", ".join(named[:-1]) + " and " + named[-1]


def approved_by(req: ProvisioningRequest) -> str:
    """Who approved and when, for mrkdwn: everyone whose approval counted, else the one who
    decided (approved before approvals were recorded one by one)."""
    names = approvers_of(deciding(req))
    when = f" {slack_date(req.decided_at)}" if req.decided_at else ""
    return f"{mentions(names or (req.decided_by or '',))}{when}"


# A card shows at most this many notes, each at most this long (the audit page keeps them
# whole): with several approvals and the card's other text at their longest, Slack's size
# (about 12,000 characters of blocks) would be exceeded.
CARD_NOTES = 3
CARD_NOTE: tuple[int, int] = (200, 400)


def approval_notes(approvals: tuple[Approval, ...]) -> list[Block]:
    """The notes approvers added, each under their name (the note as plain text: it is theirs
    to write, not to format)."""
    notes = [
        context(md(f"Note from {mention(approval.approver_id)}:"), plain(note))
        for approval in approvals
        if (note := clip(approval.note, CARD_NOTE, multiline=True))
    ]
    return notes[:CARD_NOTES]


def granted_notes(req: ProvisioningRequest) -> list[Block]:
    """The notes of the approvals that approved the request."""
    return approval_notes(deciding(req))


def approval_count_blocks(req: ProvisioningRequest, required: ApprovalsRequired) -> list[Block]:
    """While a request waits: how many of the approvals it needs it has, and whose; then the
    approvals of other roles (a lower one, or the one asked before a raise), each counted
    towards granting that role."""
    given = counting(req)
    names = approvers_of(given)
    needed = required.needed(req.role_asked)
    blocks: list[Block] = []
    role = approval_subject(req)
    if names:
        blocks.append(
            section_md(
                f":ballot_box_with_check: {len(names)} of {needed} approvals ({role}): "
                f"{mentions(names)}"
            )
        )
    elif needed > 1:
        blocks.append(
            section_md(
                f":ballot_box_with_check: Needs {needed} approvals ({role}) from different "
                "approvers before anything changes in Connect."
            )
        )
    notes = approval_notes(given)
    blocks.extend(notes)
    room = CARD_NOTES - len(notes)  # the card's notes in all, whichever role they are for
    for other, approvals in other_roles(req).items():
        approvers = approvers_of(approvals)
        blocks.append(
            context(
                md(
                    f"{role_label(other)}: {len(approvers)} of {required.needed(other)} approvals "
                    f"({mentions(approvers)}); they count towards granting {role_label(other)}, "
                    f"not {role}."
                )
            )
        )
        more = approval_notes(approvals)[: max(0, room)]
        room -= len(more)
        blocks.extend(more)
    return blocks


def approval_subject(req: ProvisioningRequest) -> str:
    """What the approvals of a request are counted for: the role it asks for, or, for one that
    grants none (a group, a lock), the request itself."""
    if req.kind in (RequestKind.NEW_ACCOUNT, RequestKind.ROLE_CHANGE):
        return role_label(req.role_asked)
    return "this request"


def approved_so_far(req: ProvisioningRequest) -> str:
    """Who approved a request that ended without enough approvals (expired, denied), for
    mrkdwn; "" when nobody did."""
    names = approvers_of(current(req))
    return mentions(names) if names else ""


def guid_blocks(guid: str | None, connect_url: str, *, person: bool = True) -> list[Block]:
    """The Connect GUID, and a link to the person in Connect (`person`; a group has none)."""
    if not guid:
        return []
    if not person:
        return [context(plain(f"Connect group GUID: {clip(guid, GUID)}"))]
    blocks: list[Block] = [context(plain(f"Connect GUID: {clip(guid, GUID)}"))]
    if SAFE_GUID_RE.fullmatch(guid):
        url = link_url(connect_person_url(connect_url, guid))
        blocks.append(section_md(f"<{url}|Open this person in Posit Connect>"))
    return blocks


def outcome_note(req: ProvisioningRequest) -> list[Block]:
    """What settling an unclear answer from Connect found, when the state alone does not say."""
    if not req.outcome_note:
        return []
    return [context(plain(clip(req.outcome_note, ERROR, multiline=True)))]


def permalink_block(card_permalink: str | None) -> list[Block]:
    if not card_permalink:
        return []
    return [context(md(f"<{link_url(card_permalink)}|View the request>"))]
