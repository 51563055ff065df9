"""What a search shows the person who typed it: the matches (with a Request account button for
people without an account), no matches, or why the search failed."""

from __future__ import annotations

from typing import assert_never

from bot.slack.ui.describe import person_text
from bot.slack.ui.ids import ACTION_REQUEST_ACCOUNT
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
from bot.slack.ui.text import GUID, PREFIX, clip, fallback_value
from bot.slack.ui.values import encode_person_value, person_value_too_long
from bot.workflow.models import DirectoryEntry, DirectoryPage
from bot.workflow.outcomes import SearchProblem


def no_results_message(prefix: str) -> Message:
    shown = clip(prefix, PREFIX)
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


def _result_row(user: DirectoryEntry, correlation_id: str | None = None) -> Block:
    text = person_text(user.full_name, user.username, user.email)
    if user.has_account:
        text += f"\nHas an account (GUID {clip(user.guid, GUID)})"
        return section_plain(text)
    if person_value_too_long(user):
        return section_plain(f"{text}\nCan't be requested from Slack: directory entry too large.")
    row = section_plain(text)
    row["accessory"] = button(
        "Request account",
        action_id=ACTION_REQUEST_ACCOUNT,
        value=encode_person_value(user, correlation_id),
    )
    return row


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
) -> Message:
    """Header, a row per person while the limits allow, then how many more matched.

    `connect_url` is not used yet (rows do not link to Connect); it is part of the signature so
    callers need not change when they do.
    """
    people = page.entries
    if not people:
        return no_results_message(prefix)
    total = max(page.total, len(people))
    head = header(f"Directory matches for “{clip(prefix, PREFIX)}”")
    rows: list[Block] = []
    measured = blocks_json_len([head]) - 2  # the header's own JSON length
    for user in people:
        if len(rows) + 2 >= MAX_MESSAGE_BLOCKS:  # header + rows + footer
            break
        row = _result_row(user, correlation_id)
        row_len = blocks_json_len([row]) - 2
        footer_len = blocks_json_len([_results_footer(len(rows) + 1, total)]) - 2
        if list_json_len(measured + row_len + footer_len, len(rows) + 3) > BLOCKS_JSON_BUDGET:
            break
        rows.append(row)
        measured += row_len
    blocks = [head, *rows, _results_footer(len(rows), total)]
    fallback = f"Directory matches for {fallback_value(prefix)}: {len(rows)} of {total}"
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
