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

PREFIX_MAX_LENGTH = 100
# Longest piece of the user's own text quoted back in a reason: keeps the help message short.
_QUOTE_MAX = 30

_SUBCOMMAND_RE = re.compile(r"(\S+)(?:\s+(.*))?", re.DOTALL)
# One whole Slack token: `<@U123>`, `<#C1|general>`, `<!here>`, `<mailto:…|label>`, `<http…|label>`.
_SLACK_TOKEN_RE = re.compile(r"<(@|#|!|mailto:|https?://)([^<>|]*)(?:\|([^<>]*))?>", re.IGNORECASE)


@dataclass(frozen=True)
class Help:
    """Show the usage. `reason` is plain text (it may quote what the user typed), never mrkdwn."""

    reason: str | None = None


@dataclass(frozen=True)
class Search:
    prefix: str


@dataclass(frozen=True)
class Pending:
    """What waits for a decision (approvers only)."""


@dataclass(frozen=True)
class Status:
    """The caller's own requests."""


ParsedCommand = Help | Search | Pending | Status

# Subcommands that take no argument; extra words are refused rather than ignored, so a typo such as
# `/connect-user status jan` (meaning search) is explained instead of silently answered.
_BARE_SUBCOMMANDS: dict[str, type[Pending] | type[Status]] = {
    "pending": Pending,
    "status": Status,
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
    if subcommand in _BARE_SUBCOMMANDS:
        if rest.strip():
            return Help(reason=f"`{subcommand}` takes nothing after it")
        return _BARE_SUBCOMMANDS[subcommand]()
    return Help(reason=f"unknown subcommand `{_quote(word)}`")


def _parse_search(rest: str) -> ParsedCommand:
    prefix = rest.strip()
    if not prefix:
        return Help(reason="search needs a prefix, e.g. `/connect-user search jan`")
    token = _SLACK_TOKEN_RE.fullmatch(prefix)
    if token is not None:
        label = (token.group(3) or "").strip()
        if not label:
            return Help(
                reason="search for part of a name, username or email, not a Slack mention or link"
            )
        prefix = label
    if any(unicodedata.category(ch) == "Cc" for ch in prefix):
        return Help(reason="the search prefix contains control characters")
    if len(prefix) > PREFIX_MAX_LENGTH:
        return Help(reason=f"the search prefix is longer than {PREFIX_MAX_LENGTH} characters")
    return Search(prefix=prefix)


def _quote(word: str) -> str:
    # The reason is shown back to the user: keep it printable and short.
    cleaned = "".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in word)
    cleaned = cleaned.replace("`", "'")
    return cleaned if len(cleaned) <= _QUOTE_MAX else cleaned[: _QUOTE_MAX - 1] + "…"
