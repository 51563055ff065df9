"""The modals: why a person needs an account (the requester), which role an account should have
and why (the requester), why a request is denied (the approver), and what replaces a form the bot
no longer understands."""

from __future__ import annotations

from typing import assert_never

from bot.slack.ui.describe import account_role, account_standing, person_text
from bot.slack.ui.ids import (
    DENY_REASON_BLOCK,
    DENY_REASON_INPUT,
    JUSTIFICATION_BLOCK,
    JUSTIFICATION_INPUT,
    ROLE_BLOCK,
    ROLE_INPUT,
    VIEW_DENY_REASON,
    VIEW_JUSTIFICATION,
    VIEW_ROLE_CHANGE,
)
from bot.slack.ui.kit import View, context, md, plain, section_md, section_plain
from bot.slack.ui.limits import MAX_PRIVATE_METADATA
from bot.slack.ui.text import USERNAME, clip
from bot.slack.ui.values import PersonValue
from bot.workflow.outcomes import RoleForm, RoleFormProblem
from bot.workflow.roles import role_label

JUSTIFICATION_MIN_LENGTH = 3
JUSTIFICATION_MAX_LENGTH = 1000
DENY_REASON_MAX_LENGTH = 500


def _check_metadata(private_metadata: str) -> None:
    # Cutting would corrupt what the submission handler reads back: refuse loudly instead.
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError("private_metadata longer than Slack allows")


def justification_modal(*, person: PersonValue, private_metadata: str) -> View:
    """Ask the requester why; raises ValueError if private_metadata is over 3,000 chars."""
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


def role_change_modal(*, form: RoleForm, private_metadata: str) -> View:
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
            {
                "type": "input",
                "block_id": ROLE_BLOCK,
                "label": plain("New role"),
                "element": {
                    "type": "static_select",
                    "action_id": ROLE_INPUT,
                    "placeholder": plain("Choose a role"),
                    "options": [
                        {"text": plain(role_label(role)), "value": role} for role in form.roles
                    ],
                },
            },
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
