"""What a search shows the person who typed it: the matches (with a Request account button for
people without an account, and each account's role, whether it is locked and a Change role button
where Connect manages roles), no matches, or why the search failed.

Where the login provider has no directory search, the matches are existing Connect accounts only,
and the message says that new accounts are made when people first log in."""

from __future__ import annotations

from typing import assert_never

from bot.slack.ui.describe import account_standing, person_text
from bot.slack.ui.ids import (
    ACTION_CHANGE_ROLE,
    ACTION_JOIN_GROUPS,
    ACTION_REQUEST_ACCOUNT,
    ACTION_REQUEST_UNLOCK,
)
from bot.slack.ui.kit import (
    Block,
    Message,
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
from bot.slack.ui.limits import BLOCKS_JSON_BUDGET, MAX_MESSAGE_BLOCKS
from bot.slack.ui.refusals import GROUPS_FROM_PROVIDER
from bot.slack.ui.text import GUID, PREFIX, clip, fallback_value
from bot.slack.ui.values import encode_person_value, is_account_guid, person_value_too_long
from bot.workflow.models import DirectoryEntry, DirectoryPage
from bot.workflow.outcomes import SearchProblem
from bot.workflow.requests import MIN_ACCOUNT_PREFIX

# Where the login provider has no directory search (SAML, most OAuth2, password, PAM, proxied).
FIRST_LOGIN_NOTE = (
    "This Posit Connect server cannot search your organisation's directory, so only existing "
    "accounts are listed. New accounts are created when people first log in to Posit Connect."
)


def no_results_message(prefix: str, *, accounts_only: bool = False) -> Message:
    shown = clip(prefix, PREFIX)
    if accounts_only:
        return message(
            f"No Posit Connect account matches {fallback_value(prefix)}",
            [
                section_plain(f"No Posit Connect account matches “{shown}”."),
                context(md(FIRST_LOGIN_NOTE)),
            ],
        )
    return message(
        f"No one in the directory matches {fallback_value(prefix)}",
        [
            section_plain(f"No one in the directory matches “{shown}”."),
            context(
                md(
                    "The search matches the start of a name, username or email. "
                    "Try a shorter prefix or another spelling."
                )
            ),
        ],
    )


def _result_row(
    user: DirectoryEntry, correlation_id: str | None = None, *, role_changes: bool = False
) -> Block:
    text = person_text(user.full_name, user.username, user.email)
    if user.has_account:
        text += f"\nHas an account (GUID {clip(user.guid, GUID)})"
        text += f"\n{account_standing(user.user_role, user.locked)}"
        row = section_plain(text)
        # The buttons carry the GUID only: the form reads the account from Connect again.
        if user.locked and is_account_guid(user.guid):
            # It cannot log in: unlocking is what it needs first (a role can follow).
            row["accessory"] = button(
                "Request unlock", action_id=ACTION_REQUEST_UNLOCK, value=str(user.guid)
            )
        elif role_changes and is_account_guid(user.guid):
            row["accessory"] = button(
                "Change role", action_id=ACTION_CHANGE_ROLE, value=str(user.guid)
            )
        return row
    if person_value_too_long(user):
        return section_plain(f"{text}\nCan't be requested from Slack: directory entry too large.")
    row = section_plain(text)
    row["accessory"] = button(
        "Request account",
        action_id=ACTION_REQUEST_ACCOUNT,
        value=encode_person_value(user, correlation_id),
    )
    return row


def _join_groups_actions(guid: str, index: int) -> Block:
    """Join groups for an account: the button carries the GUID only (the form reads the
    account from Connect again)."""
    return {
        "type": "actions",
        "block_id": f"join_groups:{index}",
        "elements": [button("Join groups", action_id=ACTION_JOIN_GROUPS, value=guid)],
    }


def _results_footer(shown: int, total: int) -> Block:
    if total > shown:
        more = total - shown
        text = (
            f"Showing {shown} of {total} matches; {more} more not shown. "
            "Type a longer prefix to narrow the list."
        )
    else:
        text = f"{shown} {'match' if shown == 1 else 'matches'}."
    return context(md(text))


def search_results_message(
    prefix: str,
    page: DirectoryPage,
    *,
    connect_url: str,
    correlation_id: str | None = None,
    accounts_only: bool = False,
    role_changes: bool = False,
    group_joins: bool = False,
) -> Message:
    """Header, a row per person while the limits allow, then how many more matched.

    `accounts_only`: the entries are existing Connect accounts (the login provider has no
    directory search), and the message says new accounts are made at first login.
    `role_changes`: Connect manages roles, so accounts get a Change role button.
    `group_joins`: the bot may add members to Connect groups, so accounts get a Join groups
    button (in an actions block under the row: the row's accessory may be Change role).
    `connect_url` is not used yet (rows do not link to Connect); it is part of the signature so
    callers need not change when they do.
    """
    people = page.entries
    if not people:
        return no_results_message(prefix, accounts_only=accounts_only)
    total = max(page.total, len(people))
    shown_prefix = clip(prefix, PREFIX)
    top: list[Block]
    if accounts_only:
        top = [
            header(f"Posit Connect accounts matching “{shown_prefix}”"),
            context(md(FIRST_LOGIN_NOTE)),
        ]
    else:
        top = [header(f"Directory matches for “{shown_prefix}”")]
    rows: list[Block] = []
    measured = sum(blocks_json_len([block]) - 2 for block in top)  # their own JSON lengths
    shown = 0
    for index, user in enumerate(people):
        row_blocks = [_result_row(user, correlation_id, role_changes=role_changes)]
        if group_joins and user.has_account and is_account_guid(user.guid):
            row_blocks.append(_join_groups_actions(str(user.guid), index))
        if len(top) + len(rows) + len(row_blocks) >= MAX_MESSAGE_BLOCKS:  # + footer
            break
        row_len = blocks_json_len(row_blocks) - 2
        footer_len = blocks_json_len([_results_footer(shown + 1, total)]) - 2
        count = len(top) + len(rows) + len(row_blocks) + 1
        if list_json_len(measured + row_len + footer_len, count) > BLOCKS_JSON_BUDGET:
            break
        rows.extend(row_blocks)
        measured += row_len
        shown += 1
    blocks = [*top, *rows, _results_footer(shown, total)]
    what = "Posit Connect accounts matching" if accounts_only else "Directory matches for"
    fallback = f"{what} {fallback_value(prefix)}: {shown} of {total}"
    return message(fallback, blocks)


def search_failure_message(problem: SearchProblem, prefix: str) -> Message:
    """Why the directory gave no answer to a search."""
    match problem:
        case SearchProblem.TOO_MANY_RESULTS:
            fallback = "Too many people match that prefix"
            text = (
                ":mag: *Too many people match that prefix* for the directory to list them. "
                "Type a few more letters and search again."
            )
        case SearchProblem.REMOTE_SEARCH_UNSUPPORTED:
            fallback = "Posit Connect cannot search the directory"
            text = (
                ":no_entry: *Posit Connect cannot search its directory*: its login provider has "
                "no remote search. Ask a Connect administrator to add accounts for you."
            )
        case SearchProblem.CONNECT_UNAVAILABLE:
            fallback = "Posit Connect is not answering"
            text = (
                ":hourglass: *Posit Connect is down or slow to answer* right now. "
                "Try again in a minute."
            )
        case SearchProblem.CONNECT_GARBAGE:
            fallback = "Posit Connect gave an unexpected answer"
            text = (
                ":warning: *Posit Connect gave an answer the bot did not understand.* "
                "Try again later; if it keeps happening, tell an administrator."
            )
        case SearchProblem.PREFIX_TOO_SHORT:
            fallback = "Type a few more letters"
            text = (
                f":mag: *Type at least {MIN_ACCOUNT_PREFIX} letters* of a username or name: "
                "this server lists Connect's accounts, and a shorter prefix would list nearly "
                "everyone."
            )
        case SearchProblem.NO_GROUP_SEARCH:
            fallback = "Groups come from the login provider"
            text = f":no_entry: {GROUPS_FROM_PROVIDER}"
        case SearchProblem.CONFIGURATION:
            fallback = "The bot is not set up correctly"
            text = (
                ":wrench: *The bot cannot search*: its Posit Connect API key is invalid or lacks "
                "permission. Tell an administrator; they can run `connect-user-bot check`."
            )
        case _:
            assert_never(problem)
    return _failure(fallback, text, prefix)


def search_error_message(prefix: str) -> Message:
    """The search failed on the bot's side (an exception, not an answer from the directory)."""
    return _failure(
        "Something went wrong", ":x: *Something went wrong* while searching. Try again.", prefix
    )


def _failure(fallback: str, text: str, prefix: str) -> Message:
    return message(
        fallback,
        [
            section_md(text),
            context(plain(f"Search: “{clip(prefix, PREFIX)}”")),
        ],
    )
