"""What a person asking for their own Connect account sees: a modal that opens at once while
the bot looks for them, then the request form (bot/slack/ui/modals.py) or, here, why there is
none — no entry with their email, several, an account they already have."""

from __future__ import annotations

from typing import assert_never

from bot.slack.ui.describe import account_standing, person_text
from bot.slack.ui.ids import ACTION_CHANGE_ROLE, OWN_ACCOUNT_ACTIONS_BLOCK
from bot.slack.ui.kit import Block, View, button, context, plain, section_md, section_plain
from bot.slack.ui.text import EMAIL, clip, link_url
from bot.workflow.finding import FindProblem, OwnEntry

TITLE = "Request my account"
_SEARCH_HINT = "Search for yourself instead: `/connect-user search <your name>`."


def own_account_loading_view() -> View:
    """Opened at once (the trigger lasts 3 seconds), replaced once the directory answered."""
    return {
        "type": "modal",
        "title": plain(TITLE),
        "close": plain("Cancel"),
        "blocks": [section_plain("Looking for you in the directory…")],
    }


def own_account_view(own: OwnEntry, *, connect_url: str, role_changes: bool) -> View:
    """Why there is no form: `own` has a problem, or its entry has an account already (shown
    with its role, and Change role when the bot can set roles)."""
    blocks: list[Block] = []
    entry = own.entry
    if entry is not None and entry.has_account:
        blocks.append(section_md(":white_check_mark: You already have a Posit Connect account:"))
        blocks.append(
            section_plain(
                person_text(entry.full_name, entry.username, entry.email)
                + "\n"
                + account_standing(entry.user_role, entry.locked)
            )
        )
        if role_changes and entry.guid:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": OWN_ACCOUNT_ACTIONS_BLOCK,
                    "elements": [
                        button("Change role", action_id=ACTION_CHANGE_ROLE, value=entry.guid)
                    ],
                }
            )
    else:
        blocks.extend(_problem_blocks(own, connect_url))
    return {"type": "modal", "title": plain(TITLE), "close": plain("Close"), "blocks": blocks}


def _problem_blocks(own: OwnEntry, connect_url: str) -> list[Block]:
    email = clip(own.email, EMAIL) or "your email"
    problem = own.problem or FindProblem.NOT_FOUND
    match problem:
        case FindProblem.NO_EMAIL:
            text = (
                "Your Slack profile shows no email address, so I can't find you in the directory."
            )
        case FindProblem.SLACK_UNAVAILABLE:
            text = "I couldn't read your Slack profile just now. Please try again in a minute."
        case FindProblem.CONNECT_UNAVAILABLE:
            text = "Posit Connect didn't answer just now. Please try again in a minute."
        case FindProblem.NOT_FOUND:
            text = f"No one in the directory has the email {email}."
        case FindProblem.SEVERAL:
            text = (
                f"Several directory entries have the email {email}, so I can't tell which one "
                "is yours."
            )
        case FindProblem.NO_DIRECTORY:
            url = link_url(connect_url.rstrip("/") + "/connect/")
            return [
                section_md(
                    "Your organisation's login provider gives the bot no directory to search: "
                    f"your Posit Connect account is made when you first <{url}|log in to "
                    "Connect>."
                ),
                context(plain(f"No Connect account has the email {email} yet.")),
            ]
        case _:
            assert_never(problem)
    return [section_plain(text), context(plain(_SEARCH_HINT))]
