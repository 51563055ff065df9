"""Text that is safe to show: escaping for mrkdwn, clipping to Slack's sizes, mentions, links
and dates. Untrusted text only ever reaches a message through `clip` (plain text) or
`fallback_value` (mrkdwn fallbacks)."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from bot.workflow.models import filed_by_bot

# Display caps for untrusted fields: (characters, characters once JSON-escaped).
Cap = tuple[int, int]
NAME: Cap = (100, 600)
USERNAME: Cap = (100, 600)
EMAIL: Cap = (120, 720)
GUID: Cap = (64, 400)
PREFIX: Cap = (100, 600)
LONG_TEXT: Cap = (1500, 4000)  # justification
REASON: Cap = (600, 2000)  # deny reason
ERROR: Cap = (500, 1500)  # last_error
LIST_JUSTIFICATION: Cap = (200, 1200)  # a justification in a list of requests
_FALLBACK_VALUE = 60  # an untrusted value quoted in a fallback, before escaping

_ZWSP = "\u200b"
_ELLIPSIS = "…"
# Connect GUIDs are UUIDs; anything else is shown as text but never put into a link.
SAFE_GUID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
# Line separators and bidi overrides/isolates: would let a name fake a line or reorder the text
# around it ("bob · evil@x" shown as "x@live · bob").
_LAYOUT_CHARS = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Slack user and channel ids (U…, W…, C…); anything else is not mentioned.
_SLACK_ID_RE = re.compile(r"[A-Z0-9]{2,40}")


def escape_mrkdwn(text: str) -> str:
    """Make untrusted text inert in mrkdwn (used for fallback `text` only).

    `&`, `<`, `>` become `&amp;`, `&lt;`, `&gt;` (so no `<!channel>`, `<@U…>` or links), and every
    `*`, `_`, `~`, `` ` `` is surrounded by zero-width spaces: Slack only treats these as
    formatting at a word boundary, and a zero-width space is not one. The text reads the same.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([*_~`])", _ZWSP + r"\1" + _ZWSP, text)


def _json_len(ch: str) -> int:
    return len(json.dumps(ch)) - 2


def _scrub(text: str, *, multiline: bool = False) -> str:
    """Replace what would break a payload or fake a layout: control chars, lone surrogates."""
    out = []
    for ch in text:
        if ch == "\n" and multiline:
            out.append(ch)
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        elif ch in _LAYOUT_CHARS or unicodedata.category(ch) == "Cc":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def clip(text: str | None, caps: Cap, *, multiline: bool = False) -> str:
    """Scrub and cut to at most caps[0] characters and caps[1] JSON-escaped characters."""
    max_chars, max_json = caps
    text = _scrub(text or "", multiline=multiline).strip()
    if len(text) <= max_chars and len(json.dumps(text)) - 2 <= max_json:
        return text
    room_json = max_json - _json_len(_ELLIPSIS)
    kept, used = [], 0
    for ch in text[: max_chars - 1]:
        cost = _json_len(ch)
        if used + cost > room_json:
            break
        kept.append(ch)
        used += cost
    return "".join(kept).rstrip() + _ELLIPSIS


def fallback_value(text: str | None) -> str:
    """A short untrusted value (a username, a prefix) quoted in a notification's fallback."""
    return escape_mrkdwn(clip(text, (_FALLBACK_VALUE, _FALLBACK_VALUE * 12)) or "?")


def mention(user_id: str | None) -> str:
    if user_id and _SLACK_ID_RE.fullmatch(user_id):
        return f"<@{user_id}>"
    if user_id and filed_by_bot(user_id):
        return "the bot"
    return "someone"


def channel_mention(channel_id: str) -> str:
    return f"<#{channel_id}>" if _SLACK_ID_RE.fullmatch(channel_id) else "the channel"


def link_url(url: str) -> str:
    """A URL safe inside `<url|label>`: the characters that would end or split the token go."""
    return (
        url.replace("&", "&amp;")
        .replace("<", "%3C")
        .replace(">", "%3E")
        .replace("|", "%7C")
        .replace(" ", "%20")
    )


def link(url: str | None, label: str) -> str | None:
    return f"<{link_url(url)}|{label}>" if url else None


def connect_person_url(connect_url: str, guid: str) -> str:
    return f"{connect_url.rstrip('/')}/connect/#/people/{guid}"


def slack_date(when: datetime) -> str:
    """A date each reader sees in their own time zone, with a UTC fallback for old clients."""
    if when.tzinfo is None:  # the store writes UTC
        when = when.replace(tzinfo=UTC)
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def duration(delta: timedelta) -> str:
    """The largest whole unit ("3 days", "5 hours", "12 minutes"), never "0 days"."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"
