"""Parse the text of `/connect-user …` into a command. Pure: no Slack, no I/O.

Slack HTML-escapes `&`, `<` and `>` in slash-command text (even with `should_escape: false`), so
the text is unescaped first. A prefix is kept exactly as typed apart from surrounding whitespace;
the directory search is the place that decides what matches.

Slack mention and link tokens: a *real* mention (`@bob` picked from the autocomplete) arrives as
`<@U123>` and a pasted email or URL may arrive as `<mailto:a@b.c|a@b.c>` / `<https://x|x>`. When
the whole prefix is one such token (after unescaping), the parser searches for the token's label
(`a@b.c`, `x`, `bob`), or refuses when the token has no label, because a Slack user id is not
something the directory knows. Tokens inside a longer prefix are left as they are.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

PREFIX_MAX_LENGTH = 100
# Longest piece of the user's own text quoted back with a problem: keeps the help message short.
_QUOTE_MAX = 30

_SUBCOMMAND_RE = re.compile(r"(\S+)(?:\s+(.*))?", re.DOTALL)
# One whole Slack token: `<@U123>`, `<#C1|general>`, `<!here>`, `<mailto:…|label>`, `<http…|label>`.
_SLACK_TOKEN_RE = re.compile(r"<(@|#|!|mailto:|https?://)([^<>|]*)(?:\|([^<>]*))?>", re.IGNORECASE)


class UsageProblem(StrEnum):
    """What was wrong with the command, said before the usage (bot/slack/ui/messages.py)."""

    UNKNOWN_SUBCOMMAND = "unknown_subcommand"
    TAKES_NOTHING = "takes_nothing"  # `pending`, `status` or `seats` followed by more words
    SEARCH_WITHOUT_PREFIX = "search_without_prefix"
    PREFIX_IS_A_MENTION = "prefix_is_a_mention"  # a Slack mention or link without a label
    PREFIX_HAS_CONTROL_CHARACTERS = "prefix_has_control_characters"
    PREFIX_TOO_LONG = "prefix_too_long"


@dataclass(frozen=True)
class Help:
    """Show the usage, after what was wrong with the command (`problem`), if anything.

    `typed` is the word of the user's own text the problem is about (a subcommand), made
    printable and short; it is shown back to them as plain text."""

    problem: UsageProblem | None = None
    typed: str = ""


@dataclass(frozen=True)
class Search:
    prefix: str


@dataclass(frozen=True)
class GroupSearch:
    """`group search <prefix>`: directory (LDAP) groups to bring into Connect."""

    prefix: str


@dataclass(frozen=True)
class Pending:
    """What waits for a decision (approvers only)."""


@dataclass(frozen=True)
class Status:
    """The caller's own requests."""


@dataclass(frozen=True)
class Seats:
    """Connect's licence seats (approvers only)."""


ParsedCommand = Help | Search | GroupSearch | Pending | Status | Seats

# Subcommands that take no argument; extra words are refused rather than ignored, so a typo such as
# `/connect-user status jan` (meaning search) is explained instead of silently answered.
_BARE_SUBCOMMANDS: dict[str, type[Pending] | type[Status] | type[Seats]] = {
    "pending": Pending,
    "status": Status,
    "seats": Seats,
}


def unescape_slack(text: str) -> str:
    """Undo Slack's escaping of `&`, `<`, `>` (`&amp;` last, so `&amp;lt;` becomes `&lt;`)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_command(text: str) -> ParsedCommand:
    text = unescape_slack(text or "").strip()
    if not text:
        return Help()
    match = _SUBCOMMAND_RE.fullmatch(text)
    if match is None:  # pragma: no cover - `text` is stripped and non-empty, so \S+ always matches
        return Help()
    word, rest = match.group(1), match.group(2) or ""
    subcommand = word.lower()
    if subcommand == "help":
        return Help()
    if subcommand == "search":
        return _parse_search(rest)
    if subcommand == "group":
        return _parse_group(rest)
    if subcommand in _BARE_SUBCOMMANDS:
        if rest.strip():
            return Help(UsageProblem.TAKES_NOTHING, typed=subcommand)
        return _BARE_SUBCOMMANDS[subcommand]()
    return Help(UsageProblem.UNKNOWN_SUBCOMMAND, typed=_quote(word))


def _parse_group(rest: str) -> ParsedCommand:
    match = _SUBCOMMAND_RE.fullmatch(rest.strip())
    if match is None or match.group(1).lower() != "search":
        return Help(UsageProblem.UNKNOWN_SUBCOMMAND, typed=_quote(f"group {rest.strip()}"))
    parsed = _parse_search(match.group(2) or "")
    return GroupSearch(parsed.prefix) if isinstance(parsed, Search) else parsed


def _parse_search(rest: str) -> ParsedCommand:
    prefix = rest.strip()
    if not prefix:
        return Help(UsageProblem.SEARCH_WITHOUT_PREFIX)
    token = _SLACK_TOKEN_RE.fullmatch(prefix)
    if token is not None:
        label = (token.group(3) or "").strip()
        if not label:
            return Help(UsageProblem.PREFIX_IS_A_MENTION)
        prefix = label
    if any(unicodedata.category(ch) == "Cc" for ch in prefix):
        return Help(UsageProblem.PREFIX_HAS_CONTROL_CHARACTERS)
    if len(prefix) > PREFIX_MAX_LENGTH:
        return Help(UsageProblem.PREFIX_TOO_LONG)
    return Search(prefix=prefix)


def _quote(word: str) -> str:
    # The word is shown back to the user: keep it printable and short.
    cleaned = "".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in word)
    cleaned = cleaned.replace("`", "'")
    return cleaned if len(cleaned) <= _QUOTE_MAX else cleaned[: _QUOTE_MAX - 1] + "…"
