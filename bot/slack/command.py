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
# `/connect-user request a b c`: at most this many people at once, each at most this long.
MAX_ENTRIES = 50
ENTRY_MAX_LENGTH = 254
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
    TOO_MANY_ENTRIES = "too_many_entries"  # `request` with more than MAX_ENTRIES people
    ENTRY_IS_A_MENTION = "entry_is_a_mention"  # `request @bob`: a Slack mention, not a name
    ENTRY_NOT_TEXT = "entry_not_text"  # control characters, or longer than any username
    LOCK_WITHOUT_USERNAME = "lock_without_username"  # `lock` or `unlock` with nothing after it
    LOCK_WITHOUT_REASON = "lock_without_reason"  # `lock <username>` without saying why


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
class RequestOwn:
    """The caller asks for their own Connect account."""


@dataclass(frozen=True)
class RequestMany:
    """The caller asks for accounts for the people named: usernames or emails, as typed."""

    entries: tuple[str, ...]


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


@dataclass(frozen=True)
class Lock:
    """Ask for the account `username` (exactly) to be locked, or (`lock` False) unlocked."""

    username: str
    justification: str
    lock: bool = True


ParsedCommand = (
    Help | Search | GroupSearch | RequestOwn | RequestMany | Pending | Status | Seats | Lock
)

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
    if subcommand == "request":
        return _parse_request(rest)
    if subcommand in ("lock", "unlock"):
        return _parse_lock(rest, lock=subcommand == "lock", typed=subcommand)
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


def _parse_request(rest: str) -> ParsedCommand:
    """`request` alone: the caller's own account; followed by names: those people."""
    entries: list[str] = []
    for token in re.split(r"[\s,;]+", rest.strip()):
        if not token:
            continue
        slack_token = _SLACK_TOKEN_RE.fullmatch(token)
        if slack_token is not None:
            label = (slack_token.group(3) or "").strip()
            if not label or slack_token.group(1) in ("@", "#", "!"):
                return Help(UsageProblem.ENTRY_IS_A_MENTION)
            token = label
        if len(token) > ENTRY_MAX_LENGTH or any(unicodedata.category(ch)[0] == "C" for ch in token):
            return Help(UsageProblem.ENTRY_NOT_TEXT)
        if token.casefold() not in {entry.casefold() for entry in entries}:
            entries.append(token)
    if not entries:
        return RequestOwn()
    if len(entries) > MAX_ENTRIES:
        return Help(UsageProblem.TOO_MANY_ENTRIES)
    return RequestMany(tuple(entries))


def _parse_lock(rest: str, *, lock: bool, typed: str) -> ParsedCommand:
    """`lock <username> <why>`: the username is one word, as Connect spells it; the rest is the
    justification the approvers read."""
    match = _SUBCOMMAND_RE.fullmatch(rest.strip())
    if match is None:
        return Help(UsageProblem.LOCK_WITHOUT_USERNAME, typed=typed)
    username, why = match.group(1), (match.group(2) or "").strip()
    if _SLACK_TOKEN_RE.fullmatch(username) or any(
        unicodedata.category(ch) == "Cc" for ch in username
    ):
        return Help(UsageProblem.LOCK_WITHOUT_USERNAME, typed=typed)
    if len(username) > PREFIX_MAX_LENGTH:
        return Help(UsageProblem.PREFIX_TOO_LONG)
    if not why:
        return Help(UsageProblem.LOCK_WITHOUT_REASON, typed=typed)
    return Lock(username=username, justification=why, lock=lock)


def _quote(word: str) -> str:
    # The word is shown back to the user: keep it printable and short.
    cleaned = "".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in word)
    cleaned = cleaned.replace("`", "'")
    return cleaned if len(cleaned) <= _QUOTE_MAX else cleaned[: _QUOTE_MAX - 1] + "…"
