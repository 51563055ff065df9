"""The modals: why a person needs an account and which role (the requester), which role an
account should have and why (the requester), which role an approval grants and why a request is
denied (the approver), and what replaces a form the bot no longer understands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_never

from bot.slack.ui.describe import (
    account_role,
    account_standing,
    approval_subject,
    person_text,
    role_lines,
    who,
)
from bot.slack.ui.groups import group_blocks
from bot.slack.ui.ids import (
    APPROVAL_NOTE_BLOCK,
    APPROVAL_NOTE_INPUT,
    DENY_REASON_BLOCK,
    DENY_REASON_INPUT,
    JUSTIFICATION_BLOCK,
    JUSTIFICATION_INPUT,
    ROLE_BLOCK,
    ROLE_INPUT,
    VIEW_APPROVE,
    VIEW_DENY_REASON,
    VIEW_JUSTIFICATION,
    VIEW_LOCK_REQUEST,
    VIEW_ROLE_CHANGE,
)
from bot.slack.ui.kit import Block, View, context, md, plain, section_md, section_plain
from bot.slack.ui.limits import MAX_PRIVATE_METADATA
from bot.slack.ui.text import USERNAME, clip
from bot.slack.ui.values import PersonValue
from bot.workflow.models import ProvisioningRequest, RequestKind, StepAction
from bot.workflow.outcomes import GroupChoice, RoleForm, RoleFormProblem
from bot.workflow.roles import DEFAULT_ROLE_LABEL, outranks, role_label

JUSTIFICATION_MIN_LENGTH = 3
JUSTIFICATION_MAX_LENGTH = 1000
DENY_REASON_MAX_LENGTH = 500
APPROVAL_NOTE_MAX_LENGTH = 500


def _check_metadata(private_metadata: str) -> None:
    # Cutting would corrupt what the submission handler reads back: refuse loudly instead.
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError("private_metadata longer than Slack allows")


def _role_option(role: str) -> dict[str, Any]:
    return {"text": plain(role_label(role)), "value": role}


def role_select(
    roles: Sequence[str], *, label: str, initial: str | None, hint: str | None = None
) -> Block:
    """An input block choosing one of `roles` (labelled Viewer, Publisher, Administrator),
    `initial` preselected when it is one of them."""
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": ROLE_INPUT,
        "options": [_role_option(role) for role in roles],
    }
    if initial is not None and initial in roles:
        element["initial_option"] = _role_option(initial)
    block: Block = {
        "type": "input",
        "block_id": ROLE_BLOCK,
        "label": plain(label),
        "element": element,
    }
    if hint:
        block["hint"] = plain(hint)  # at most ~150 chars here: far below Slack's 2,000
    return block


_ROLE_HINTS = {
    "viewer": "Viewers see the content shared with them.",
    "publisher": "Publishers can also publish content.",
    "administrator": "Administrators manage the whole server.",
}


def _role_hint(roles: Sequence[str]) -> str:
    """What each role offered allows, in one line."""
    return " ".join(_ROLE_HINTS[role] for role in roles if role in _ROLE_HINTS)


def request_role_blocks(roles: Sequence[str] | None) -> list[Block]:
    """The role part of the request form: a choice of the roles offered (the first
    preselected); none offered: the account gets Connect's default role; None: the bot could
    not tell in time."""
    if roles:
        return [role_select(roles, label="Role", initial=roles[0], hint=_role_hint(roles))]
    if roles is None:
        return [
            context(
                plain(
                    "Role: I couldn't check just now which roles can be asked for. The request "
                    f"asks for the lowest one offered ({DEFAULT_ROLE_LABEL} if none is); "
                    "an approver can grant another."
                )
            )
        ]
    return [context(plain(f"Role: the account gets {DEFAULT_ROLE_LABEL}."))]


def justification_modal(
    *,
    person: PersonValue,
    private_metadata: str,
    roles: Sequence[str] | None = (),
    groups: GroupChoice | None = None,
) -> View:
    """Ask the requester why, and which of `roles` (the roles offered; empty: Connect's default
    role; None: not known in time), and which Connect groups (`groups`: offered, or why not);
    raises ValueError if private_metadata is over 3,000 chars."""
    _check_metadata(private_metadata)
    return {
        "type": "modal",
        "callback_id": VIEW_JUSTIFICATION,
        "title": plain("Request account"),
        "submit": plain("Send request"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            section_md("Request a Posit Connect account for:"),
            section_plain(person_text(person.full_name, person.username, person.email)),
            {
                "type": "input",
                "block_id": JUSTIFICATION_BLOCK,
                "label": plain("Why do they need an account?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": JUSTIFICATION_INPUT,
                    "multiline": True,
                    "min_length": JUSTIFICATION_MIN_LENGTH,
                    "max_length": JUSTIFICATION_MAX_LENGTH,
                    "placeholder": plain("e.g. joins the forecasting team and publishes reports"),
                },
            },
            *request_role_blocks(roles),
            *group_blocks(groups),
            context(md("The approvers see this with your name before they decide.")),
        ],
    }


def role_change_loading_view() -> View:
    """Opened at once on a Change role click (the trigger lasts 3 seconds), then replaced by the
    form once the account has been read from Connect."""
    return {
        "type": "modal",
        "title": plain("Change role"),
        "close": plain("Cancel"),
        "blocks": [section_plain("Reading the account from Posit Connect…")],
    }


def role_change_modal(
    *, form: RoleForm, private_metadata: str, groups: GroupChoice | None = None
) -> View:
    """Ask the requester which role the account should have and why; the roles offered are the
    form's (never the current one), none preselected. Raises ValueError if private_metadata is
    over 3,000 chars."""
    _check_metadata(private_metadata)
    account = form.account
    return {
        "type": "modal",
        "callback_id": VIEW_ROLE_CHANGE,
        "title": plain("Change role"),
        "submit": plain("Send request"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            section_md("Request a new Posit Connect role for:"),
            section_plain(
                person_text(account.full_name, account.username, account.email)
                + "\n"
                + account_standing(account.user_role, account.locked)
            ),
            # Nothing preselected: the requester chooses.
            role_select(form.roles, label="New role", initial=None, hint=_role_hint(form.roles)),
            *group_blocks(groups),
            {
                "type": "input",
                "block_id": JUSTIFICATION_BLOCK,
                "label": plain("Why do they need this role?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": JUSTIFICATION_INPUT,
                    "multiline": True,
                    "min_length": JUSTIFICATION_MIN_LENGTH,
                    "max_length": JUSTIFICATION_MAX_LENGTH,
                    "placeholder": plain("e.g. now publishes the team's weekly reports"),
                },
            },
            context(
                md(
                    "The approvers see this with your name before they decide; the person is "
                    "told when their role changes."
                )
            ),
        ],
    }


def lock_request_modal(*, lock: bool, private_metadata: str) -> View:
    """Ask why an account should be locked (or unlocked). The account is read from Connect when
    the request is filed, so the form names no one it has not read. Raises ValueError if
    private_metadata is over 3,000 chars."""
    _check_metadata(private_metadata)
    verb = "lock" if lock else "unlock"
    effect = (
        "A locked account cannot log in; its content stays, and it takes no licence seat."
        if lock
        else "An unlocked account takes a licence seat again: Connect refuses when none is free."
    )
    return {
        "type": "modal",
        "callback_id": VIEW_LOCK_REQUEST,
        "title": plain(f"Request {verb}"),
        "submit": plain("Send request"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            section_md(f"Ask the approvers to {verb} this Posit Connect account. {effect}"),
            {
                "type": "input",
                "block_id": JUSTIFICATION_BLOCK,
                "label": plain(f"Why should it be {verb}ed?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": JUSTIFICATION_INPUT,
                    "multiline": True,
                    "min_length": JUSTIFICATION_MIN_LENGTH,
                    "max_length": JUSTIFICATION_MAX_LENGTH,
                },
            },
            context(md("The approvers see this with your name before they decide.")),
        ],
    }


def role_form_problem_view(problem: RoleFormProblem, *, role: str | None = None) -> View:
    """Shown in place of the role-change form when it cannot be offered; `role` is the
    account's current role, when known."""
    match problem:
        case RoleFormProblem.NO_ACCOUNT:
            text = (
                "This Posit Connect account no longer exists. Search again to see the "
                "current accounts."
            )
        case RoleFormProblem.ROLES_NOT_MANAGED:
            text = (
                "The bot cannot change roles on this Posit Connect server: roles come from its "
                "login provider, or the bot's API key is not an administrator's. Ask a Posit "
                "Connect administrator."
            )
        case RoleFormProblem.NO_OTHER_ROLE:
            current = account_role(role)
            text = (
                f"This account already has the only role that can be asked for here "
                f"({current}). A Posit Connect administrator can change it in Connect."
            )
        case RoleFormProblem.CANNOT_READ:
            text = (
                "The bot could not read this account from Posit Connect just now. "
                "Close this and try again in a minute."
            )
        case _:
            assert_never(problem)
    return {
        "type": "modal",
        "title": plain("Change role"),
        "close": plain("Close"),
        "blocks": [section_plain(text)],
    }


def approve_modal(
    req: ProvisioningRequest,
    *,
    roles: Sequence[str],
    private_metadata: str,
    approvals_needed: int = 1,
) -> View:
    """Confirm an approval, with an optional note for the card and the requester, and the role
    it grants when the request sets one: `roles` (REQUESTABLE_ROLES) with the role asked
    preselected. A role above it is a new question, which the modal says; the submission is
    checked again on the server (the approver, the role). `approvals_needed`: how many the
    role asked needs (said when more than one). Raises ValueError if private_metadata is over
    3,000 chars."""
    _check_metadata(private_metadata)
    if req.kind is RequestKind.ROLE_CHANGE:
        # Giving the account the role it has is no change.
        roles = [role for role in roles if role != req.role_before]
        question = f"Approve the role change for {who(req)}?"
    elif req.kind is RequestKind.NEW_GROUP:
        question = f"Approve bringing {who(req)} into Posit Connect?"
    elif req.kind is RequestKind.JOIN_GROUPS:
        question = f"Approve adding {who(req)} to these Connect groups?"
    else:
        question = f"Approve the account request for {who(req)}?"
    asked = role_label(req.role_asked)
    blocks: list[Block] = [section_plain(question), section_plain(role_lines(req))]
    if req.step(StepAction.SET_ROLE) is not None:
        blocks.append(role_select(roles, label="Role to grant", initial=req.role_asked))
        if any(req.role_asked and outranks(role, req.role_asked) for role in roles):
            blocks.append(
                context(
                    plain(
                        f"A role above {asked} (the one asked for) is a new question: nothing is "
                        "approved, the request asks for that role and waits for another approval."
                    )
                )
            )
    if approvals_needed > 1:
        blocks.append(
            context(
                plain(
                    f"{approval_subject(req).capitalize()} needs {approvals_needed} approvals "
                    "from different approvers: "
                    "yours is counted, and Connect is changed when the last one is given."
                )
            )
        )
    blocks.append(
        {
            "type": "input",
            "block_id": APPROVAL_NOTE_BLOCK,
            "optional": True,
            "label": plain("Note (optional)"),
            "hint": plain("Shown on the card and to the requester."),
            "element": {
                "type": "plain_text_input",
                "action_id": APPROVAL_NOTE_INPUT,
                "multiline": True,
                "max_length": APPROVAL_NOTE_MAX_LENGTH,
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": VIEW_APPROVE,
        "title": plain("Approve request"),
        "submit": plain("Approve"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def refusal_view(title: str, text: str) -> View:
    """A modal that only says why there is nothing to do (`text` is the bot's own words)."""
    return {
        "type": "modal",
        "title": plain(title),
        "close": plain("Close"),
        "blocks": [section_md(text)],
    }


def outdated_form_view() -> View:
    """Shown in place of a form the bot no longer understands."""
    return {
        "type": "modal",
        "title": plain("Form out of date"),
        "close": plain("Close"),
        "blocks": [
            section_md(
                "This form is no longer supported. Close it and start again with "
                "`/connect-user search &lt;prefix&gt;`."
            )
        ],
    }


def deny_modal(*, request_id: str, username: str) -> View:
    """Ask an approver why they deny; private_metadata is the request id."""
    _check_metadata(request_id)
    return {
        "type": "modal",
        "callback_id": VIEW_DENY_REASON,
        "title": plain("Deny request"),
        "submit": plain("Deny"),
        "close": plain("Cancel"),
        "private_metadata": request_id,
        "blocks": [
            section_plain(f"Deny the account request for {clip(username, USERNAME)}?"),
            {
                "type": "input",
                "block_id": DENY_REASON_BLOCK,
                "label": plain("Reason (the requester will see it)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": DENY_REASON_INPUT,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": DENY_REASON_MAX_LENGTH,
                },
            },
        ],
    }
