"""Groups as people see them: `group search` results (each directory group in Connect already, or
offered with a Request group button), the group request form, the Connect groups a request form
offers (an external select whose options the bot answers as the requester types), and why a form
offers none."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_never

from bot.slack.ui.describe import account_standing, person_text
from bot.slack.ui.ids import (
    ACTION_REQUEST_GROUP,
    GROUPS_BLOCK,
    GROUPS_INPUT,
    JUSTIFICATION_BLOCK,
    JUSTIFICATION_INPUT,
    VIEW_GROUP_REQUEST,
    VIEW_JOIN_GROUPS,
)
from bot.slack.ui.kit import (
    Block,
    Message,
    View,
    blocks_json_len,
    button,
    context,
    header,
    list_json_len,
    md,
    message,
    plain,
    section_md,
    section_plain,
)
from bot.slack.ui.limits import BLOCKS_JSON_BUDGET, MAX_MESSAGE_BLOCKS, MAX_PRIVATE_METADATA
from bot.slack.ui.text import GUID, NAME, PREFIX, clip, fallback_value
from bot.slack.ui.values import group_name_fits
from bot.workflow.models import Account, DirectoryGroup, DirectoryGroupPage, GroupRef
from bot.workflow.outcomes import GroupChoice, GroupChoiceProblem, NoJoinForm, RoleFormProblem
from bot.workflow.requests import MAX_GROUPS

# Slack shows at most 100 options; an option's text is cut at 75 characters, its value at 150.
MAX_OPTIONS = 100
_OPTION_TEXT = 75
_OPTION_VALUE = 150
JUSTIFICATION_MIN_LENGTH = 1
JUSTIFICATION_MAX_LENGTH = 1000


def no_group_results_message(prefix: str) -> Message:
    shown = clip(prefix, PREFIX)
    return message(
        f"No directory group matches {fallback_value(prefix)}",
        [
            section_plain(f"No directory group matches “{shown}”."),
            context(md("The search matches the start of a group's name. Try a shorter prefix.")),
        ],
    )


def _group_row(group: DirectoryGroup, duplicated: bool) -> Block:
    name = clip(group.name, NAME)
    if group.in_connect:
        return section_plain(f"{name}\nIn Connect (GUID {clip(group.guid, GUID)})")
    if duplicated:
        # Only the name comes back from a button: the approvers could not tell which one.
        return section_plain(
            f"{name}\nSeveral directory groups have this name: ask a Connect administrator."
        )
    if not group_name_fits(group.name):
        return section_plain(f"{name}\nCan't be requested from Slack: its name is too long.")
    row = section_plain(f"{name}\nNot in Connect yet")
    row["accessory"] = button("Request group", action_id=ACTION_REQUEST_GROUP, value=group.name)
    return row


def group_results_message(prefix: str, page: DirectoryGroupPage) -> Message:
    """A row per directory group while the limits allow, then how many more matched."""
    groups = page.groups
    if not groups:
        return no_group_results_message(prefix)
    total = max(page.total, len(groups))
    names = [group.name for group in groups]
    top: list[Block] = [header(f"Directory groups matching “{clip(prefix, PREFIX)}”")]
    rows: list[Block] = []
    measured = blocks_json_len(top) - 2
    for group in groups:
        if len(top) + len(rows) + 1 >= MAX_MESSAGE_BLOCKS:
            break
        row = _group_row(group, names.count(group.name) > 1)
        row_len = blocks_json_len([row]) - 2
        if list_json_len(measured + row_len + 200, len(top) + len(rows) + 2) > BLOCKS_JSON_BUDGET:
            break
        rows.append(row)
        measured += row_len
    shown = len(rows)
    footer = (
        f"Showing {shown} of {total} groups; type a longer prefix to narrow the list."
        if total > shown
        else f"{shown} {'group' if shown == 1 else 'groups'}."
    )
    return message(
        f"Directory groups matching {fallback_value(prefix)}: {shown} of {total}",
        [*top, *rows, context(md(footer))],
    )


def group_request_modal(*, name: str, private_metadata: str) -> View:
    """Ask the requester why the directory group `name` should be brought into Connect."""
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError("private_metadata is over Slack's 3,000 characters")
    return {
        "type": "modal",
        "callback_id": VIEW_GROUP_REQUEST,
        "title": plain("Request group"),
        "submit": plain("Send request"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            section_md("Bring this directory group into Posit Connect:"),
            section_plain(clip(name, NAME)),
            justification_input("Why does Connect need this group?"),
            context(md("The approvers see this with your name before they decide.")),
        ],
    }


def justification_input(label: str) -> Block:
    return {
        "type": "input",
        "block_id": JUSTIFICATION_BLOCK,
        "label": plain(label),
        "element": {
            "type": "plain_text_input",
            "action_id": JUSTIFICATION_INPUT,
            "multiline": True,
            "min_length": JUSTIFICATION_MIN_LENGTH,
            "max_length": JUSTIFICATION_MAX_LENGTH,
        },
    }


# -- Connect groups in request forms -----------------------------------------------------------


def group_select(*, optional: bool = True) -> Block:
    """Existing Connect groups to add the account to: a select whose options the bot gives as
    the requester types (a block_suggestion, answered within Slack's 3 seconds)."""
    return {
        "type": "input",
        "block_id": GROUPS_BLOCK,
        "optional": optional,
        "label": plain("Connect groups"),
        "element": {
            "type": "multi_external_select",
            "action_id": GROUPS_INPUT,
            "placeholder": plain("Type part of a group's name"),
            "min_query_length": 1,
            "max_selected_items": MAX_GROUPS,
        },
        "hint": plain("Content shared with these groups becomes visible to the account."),
    }


def no_groups_words(problem: GroupChoiceProblem) -> str:
    """Why a form offers no Connect groups, as the requester reads it."""
    match problem:
        case GroupChoiceProblem.GROUPS_OFF:
            return "Groups: Posit Connect has groups switched off."
        case GroupChoiceProblem.PROVIDER_OWNS_MEMBERS:
            return (
                "Groups: membership comes from the login provider on this server, so the bot "
                "cannot add anyone to a group. Ask your directory's administrators."
            )
        case GroupChoiceProblem.KEY_NOT_ADMIN:
            return (
                "Groups: adding people to Connect groups needs an administrator's API key, and "
                "the bot's is not one. A Connect administrator can add them."
            )
        case GroupChoiceProblem.CANNOT_READ:
            return "Groups: I couldn't check just now whether groups can be offered."
        case _:
            assert_never(problem)


def group_blocks(choice: GroupChoice | None) -> list[Block]:
    """The groups part of a request form: the select, or why there is none (None: groups are
    not worth mentioning, e.g. a server whose groups are off and the bot never asked)."""
    if choice is None:
        return []
    if choice.problem is None:
        return [group_select()]
    return [context(plain(no_groups_words(choice.problem)))]


def group_options(groups: Sequence[GroupRef]) -> list[dict[str, Any]]:
    """Options for the group select: the group's name shown, its GUID as the value (checked
    against Connect again when the request is filed)."""
    return [
        {"text": plain(clip(group.name, (_OPTION_TEXT, 400))), "value": group.guid}
        for group in groups[:MAX_OPTIONS]
        if 0 < len(group.guid) <= _OPTION_VALUE
    ]


# -- Join groups, for an existing account --------------------------------------------------------


def join_groups_loading_view() -> View:
    """Opened at once on a Join groups click (the trigger lasts 3 seconds), then replaced by
    the form once the account has been read from Connect."""
    return {
        "type": "modal",
        "title": plain("Join groups"),
        "close": plain("Cancel"),
        "blocks": [section_plain("Reading the account from Posit Connect…")],
    }


def join_groups_modal(*, account: Account, private_metadata: str) -> View:
    """Ask which Connect groups the account should join, and why."""
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError("private_metadata is over Slack's 3,000 characters")
    return {
        "type": "modal",
        "callback_id": VIEW_JOIN_GROUPS,
        "title": plain("Join groups"),
        "submit": plain("Send request"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            section_md("Add this Posit Connect account to groups:"),
            section_plain(
                person_text(account.full_name, account.username, account.email)
                + "\n"
                + account_standing(account.user_role, account.locked)
            ),
            group_select(optional=False),
            justification_input("Why do they need these groups?"),
            context(md("The approvers see this with your name before they decide.")),
        ],
    }


def join_form_problem_view(problem: NoJoinForm) -> View:
    """Shown in place of the Join groups form when it cannot be offered."""
    if problem.groups_problem is not None:
        text = no_groups_words(problem.groups_problem)
    elif problem.account_problem is RoleFormProblem.NO_ACCOUNT:
        text = "This Posit Connect account no longer exists. Search again."
    else:
        text = "Posit Connect did not answer just now. Close this and try again in a minute."
    return {
        "type": "modal",
        "title": plain("Join groups"),
        "close": plain("Close"),
        "blocks": [section_plain(text)],
    }
