"""Slack message and modal payloads, as plain dicts. Pure: no I/O, no Slack SDK calls.

Rendering rules (why: names, emails and justifications come from the directory or from people,
and must never format text, ping a channel or forge a link):

* Untrusted text (anything a person or the directory typed: names, usernames, emails, GUIDs,
  justifications, deny reasons, errors, search prefixes) goes only into `plain_text` objects with
  `"emoji": false`. Plain text renders no mrkdwn, no mentions and no links; with `emoji` off even
  `:shortcodes:` stay literal. Single-line fields have their line breaks and control characters
  replaced by spaces, so a name cannot fake a second line ("Approved by …") on a card.
* `mrkdwn` objects hold only the bot's own words, mentions of Slack users we know by id
  (`<@U123>`, validated), dates, and links whose URL the bot built (a Connect GUID is linked only
  when it looks like a GUID).
* The top-level `text` is the fallback Slack uses for notifications; Slack parses it as mrkdwn.
  It carries no mentions and only short untrusted values (a username, a prefix), passed through
  `escape_mrkdwn`: `&`, `<`, `>` become entities, and each of `*`, `_`, `~`, `` ` `` is wrapped in
  zero-width spaces, so it cannot open or close formatting. Justifications, reasons and errors are
  never put in a fallback.
* Limits: ≤ 50 blocks a message (100 a view), ≤ 3,000 characters a text, button text ≤ 75 and
  value ≤ 2,000, modal title ≤ 24, private_metadata ≤ 3,000, and `len(json.dumps(blocks))` kept
  under `BLOCKS_JSON_BUDGET` (Slack refuses about 13k; `json.dumps` counts an emoji as 12
  characters, so it errs on the safe side). Long fields are cut with an ellipsis, never refused.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.workflow.models import DirectoryEntry, DirectoryPage, ProvisioningRequest
from bot.workflow.states import RequestState

# --- ids other modules match on ------------------------------------------------------------------

ACTION_REQUEST_ACCOUNT = "request_account"
ACTION_APPROVE = "approve_request"
ACTION_DENY = "deny_request"
ACTION_CANCEL = "cancel_request"

VIEW_JUSTIFICATION = "justification_modal"
VIEW_DENY_REASON = "deny_reason_modal"

# view_submission: state.values[JUSTIFICATION_BLOCK][JUSTIFICATION_INPUT]["value"]
JUSTIFICATION_BLOCK = "justification_block"
JUSTIFICATION_INPUT = "justification_input"
DENY_REASON_BLOCK = "deny_reason_block"
DENY_REASON_INPUT = "deny_reason_input"

# block_id of the card's Approve/Deny actions block
APPROVAL_ACTIONS_BLOCK = "approval_actions"
# block_id of the requester's Cancel button under their confirmation
CANCEL_ACTIONS_BLOCK = "cancel_actions"
# block_id prefix of each request's Approve/Deny block on the Home tab (one per request: unique)
HOME_DECIDE_BLOCK_PREFIX = "home_decide:"

JUSTIFICATION_MIN_LENGTH = 3
JUSTIFICATION_MAX_LENGTH = 1000
DENY_REASON_MAX_LENGTH = 500

# --- Slack limits --------------------------------------------------------------------------------

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ID = 255
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_BLOCKS_JSON = 12_000
# What this module aims for: leaves a margin under MAX_BLOCKS_JSON for a caller's small additions.
BLOCKS_JSON_BUDGET = 11_000

# Display caps for untrusted fields: (characters, characters once JSON-escaped).
_NAME = (100, 600)
_USERNAME = (100, 600)
_EMAIL = (120, 720)
_GUID = (64, 400)
_PREFIX = (100, 600)
_LONG_TEXT = (1500, 4000)  # justification
_REASON = (600, 2000)  # deny reason
_ERROR = (500, 1500)  # last_error
_FALLBACK_VALUE = 60  # an untrusted value quoted in a fallback, before escaping

_ZWSP = "\u200b"
_ELLIPSIS = "…"
# Connect GUIDs are UUIDs; anything else is shown as text but never put into a link.
_SAFE_GUID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
# Line separators and bidi overrides/isolates: would let a name fake a line or reorder the text
# around it ("bob · evil@x" shown as "x@live · bob").
_LAYOUT_CHARS = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Slack user ids (U…, W…); anything else is not mentioned.
_SLACK_ID_RE = re.compile(r"[A-Z0-9]{2,40}")


# --- escaping and clipping -----------------------------------------------------------------------


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


def _clip(text: str | None, caps: tuple[int, int], *, multiline: bool = False) -> str:
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


def _fallback_value(text: str | None) -> str:
    return escape_mrkdwn(_clip(text, (_FALLBACK_VALUE, _FALLBACK_VALUE * 12)) or "?")


def _mention(user_id: str | None) -> str:
    if user_id and _SLACK_ID_RE.fullmatch(user_id):
        return f"<@{user_id}>"
    return "someone"


def _link_url(url: str) -> str:
    """A URL safe inside `<url|label>`: the characters that would end or split the token go."""
    return (
        url.replace("&", "&amp;")
        .replace("<", "%3C")
        .replace(">", "%3E")
        .replace("|", "%7C")
        .replace(" ", "%20")
    )


def connect_person_url(connect_url: str, guid: str) -> str:
    return f"{connect_url.rstrip('/')}/connect/#/people/{guid}"


def _slack_date(when: datetime) -> str:
    """A date each reader sees in their own time zone, with a UTC fallback for old clients."""
    if when.tzinfo is None:  # the store writes UTC
        when = when.replace(tzinfo=UTC)
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


# --- block builders ------------------------------------------------------------------------------


def _plain(text: str) -> dict[str, Any]:
    # Slack rejects empty text objects; callers pass bot words or clipped values.
    return {"type": "plain_text", "text": text or "-", "emoji": False}


def _md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain(text)}


def _section_plain(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _plain(text)}


def _section_md(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _md(text)}


def _context(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "context", "elements": list(elements)}


def _button(text: str, *, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError("button value longer than Slack allows")
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _message(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"text": text, "blocks": blocks}


def _blocks_json_len(blocks: list[dict[str, Any]]) -> int:
    return len(json.dumps(blocks))


def _list_json_len(item_lengths_total: int, count: int) -> int:
    """What `len(json.dumps(items))` is, from the items' own JSON lengths: "[" + ", ".join + "]".

    Lets the builders measure each block once while they add blocks, instead of re-serialising
    the whole message for every candidate row (quadratic in the rows)."""
    return 2 + item_lengths_total + 2 * max(0, count - 1)


def _person_text(full_name: str, username: str, email: str) -> str:
    """`Full Name` / `username · email`, each on one line (plain text)."""
    name = _clip(full_name, _NAME)
    user = _clip(username, _USERNAME) or "(no username)"
    mail = _clip(email, _EMAIL) or "email hidden"
    first = name or user
    return f"{first}\n{user} · {mail}"


def _person_fields(full_name: str, username: str, email: str) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [
            _plain(f"Name: {_clip(full_name, _NAME) or '(none)'}"),
            _plain(f"Username: {_clip(username, _USERNAME) or '(none)'}"),
            _plain(f"Email: {_clip(email, _EMAIL) or 'hidden'}"),
        ],
    }


def _guid_blocks(guid: str | None, connect_url: str) -> list[dict[str, Any]]:
    if not guid:
        return []
    blocks = [_context(_plain(f"Connect GUID: {_clip(guid, _GUID)}"))]
    if _SAFE_GUID_RE.fullmatch(guid):
        url = _link_url(connect_person_url(connect_url, guid))
        blocks.append(_section_md(f"<{url}|Open this person in Posit Connect>"))
    return blocks


# --- person values carried by the Request account button -----------------------------------------


@dataclass(frozen=True, slots=True)
class PersonValue:
    """Who a Request-account click is for, as carried in the button's value.

    Only the username is used when the request is filed (everything else is read from the
    directory again), and no ticket travels: the searcher's client never holds a credential."""

    username: str
    full_name: str
    email: str
    # The search's request id, so logs follow the request from the command to the DM.
    correlation_id: str | None = None


def encode_person_value(user: DirectoryEntry, correlation_id: str | None = None) -> str:
    """Compact JSON, ASCII only (so Slack's length limit counts what we count)."""
    payload = {"u": user.username, "n": user.full_name, "e": user.email}
    if correlation_id and _CORRELATION_RE.fullmatch(correlation_id):
        payload["c"] = correlation_id
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def decode_person_value(value: object) -> PersonValue | None:
    """The person a button carried, or None for anything malformed. Never raises.

    Buttons from before tickets were left out still carry one (`t`): it is ignored."""
    if not isinstance(value, str) or len(value) > 4 * MAX_BUTTON_VALUE:
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    username = data.get("u")
    full_name, email = data.get("n", ""), data.get("e", "")
    if not (isinstance(username, str) and username):
        return None
    if not (isinstance(full_name, str) and isinstance(email, str)):
        return None
    correlation = data.get("c")
    if not (isinstance(correlation, str) and _CORRELATION_RE.fullmatch(correlation)):
        correlation = None
    return PersonValue(
        username=username, full_name=full_name, email=email, correlation_id=correlation
    )


_CORRELATION_RE = re.compile(r"[0-9a-f]{16}")


def person_value_too_long(user: DirectoryEntry) -> bool:
    return len(encode_person_value(user, "0" * 16)) > MAX_BUTTON_VALUE


# --- command replies -----------------------------------------------------------------------------

_USAGE_MD = (
    "*Usage*\n"
    "• `/connect-user search &lt;prefix&gt;`: find people in the directory whose name, "
    "username or email starts with the prefix, and request a Posit Connect account for them. "
    "Example: `/connect-user search jan`\n"
    "• `/connect-user status`: your own requests and what became of them; cancel one that is "
    "still waiting\n"
    "• `/connect-user pending`: requests waiting for a decision, oldest first (approvers only)\n"
    "• `/connect-user help`: show this message\n"
    "The app's *Home* tab shows the same lists."
)


def usage_message(reason: str | None = None) -> dict[str, Any]:
    """Usage, with the parser's `reason` (plain text, may quote the user) first when given."""
    blocks: list[dict[str, Any]] = []
    fallback = (
        "Usage: /connect-user search &lt;prefix&gt;, /connect-user status, "
        "/connect-user pending, or /connect-user help"
    )
    if reason:
        blocks.append(_section_plain(_clip(reason, (500, 2000))))
        fallback = f"{_fallback_value(reason)}. {fallback}"
    blocks.append(_section_md(_USAGE_MD))
    return _message(fallback, blocks)


def refusal_message(text: str, *, detail: str | None = None) -> dict[str, Any]:
    """One line written by the bot (mrkdwn allowed; never pass untrusted text as `text`).

    `detail` is untrusted text (an error from Connect, a name) shown below as plain text; it is
    kept out of the fallback.
    """
    line = _clip(text, (MAX_TEXT - 100, MAX_TEXT * 2), multiline=True)
    blocks = [_section_md(line)]
    if detail:
        blocks.append(_section_plain(_clip(detail, _ERROR, multiline=True)))
    return _message(line, blocks)


def no_results_message(prefix: str) -> dict[str, Any]:
    shown = _clip(prefix, _PREFIX)
    return _message(
        f"No one in the directory matches {_fallback_value(prefix)}",
        [
            _section_plain(f"No one in the directory matches “{shown}”."),
            _context(
                _md(
                    "The search matches the start of a name, username or email. "
                    "Try a shorter prefix or another spelling."
                )
            ),
        ],
    )


def _result_row(user: DirectoryEntry, correlation_id: str | None = None) -> dict[str, Any]:
    text = _person_text(user.full_name, user.username, user.email)
    if user.has_account:
        text += f"\nHas an account (GUID {_clip(user.guid, _GUID)})"
        return _section_plain(text)
    if person_value_too_long(user):
        return _section_plain(f"{text}\nCan't be requested from Slack: directory entry too large.")
    row = _section_plain(text)
    row["accessory"] = _button(
        "Request account",
        action_id=ACTION_REQUEST_ACCOUNT,
        value=encode_person_value(user, correlation_id),
    )
    return row


def _results_footer(shown: int, total: int) -> dict[str, Any]:
    if total > shown:
        more = total - shown
        text = (
            f"Showing {shown} of {total} matches; {more} more not shown. "
            "Type a longer prefix to narrow the list."
        )
    else:
        text = f"{shown} {'match' if shown == 1 else 'matches'}."
    return _context(_md(text))


def search_results_message(
    prefix: str,
    page: DirectoryPage,
    *,
    connect_url: str,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Header, a row per person while the limits allow, then how many more matched.

    `connect_url` is not used yet (rows do not link to Connect); it is part of the signature so
    callers need not change when they do.
    """
    people = page.entries
    if not people:
        return no_results_message(prefix)
    total = max(page.total, len(people))
    header = _header(f"Directory matches for “{_clip(prefix, _PREFIX)}”")
    rows: list[dict[str, Any]] = []
    measured = _blocks_json_len([header]) - 2  # the header's own JSON length
    for user in people:
        if len(rows) + 2 >= MAX_MESSAGE_BLOCKS:  # header + rows + footer
            break
        row = _result_row(user, correlation_id)
        row_len = _blocks_json_len([row]) - 2
        footer_len = _blocks_json_len([_results_footer(len(rows) + 1, total)]) - 2
        if _list_json_len(measured + row_len + footer_len, len(rows) + 3) > BLOCKS_JSON_BUDGET:
            break
        rows.append(row)
        measured += row_len
    blocks = [header, *rows, _results_footer(len(rows), total)]
    fallback = f"Directory matches for {_fallback_value(prefix)}: {len(rows)} of {total}"
    return _message(fallback, blocks)


_SEARCH_FAILURES: dict[str, tuple[str, str]] = {
    # kind: (fallback, mrkdwn shown)
    "too_many_results": (
        "Too many people match that prefix",
        ":mag: *Too many people match that prefix* for the directory to list them. "
        "Type a few more letters and search again.",
    ),
    "remote_search_unsupported": (
        "Posit Connect cannot search the directory",
        ":no_entry: *Posit Connect cannot search its directory*: its login provider has no "
        "remote search. Ask a Connect administrator to add accounts for you.",
    ),
    "connect_unavailable": (
        "Posit Connect is not answering",
        ":hourglass: *Posit Connect is down or slow to answer* right now. Try again in a minute.",
    ),
    "connect_garbage": (
        "Posit Connect gave an unexpected answer",
        ":warning: *Posit Connect gave an answer the bot did not understand.* "
        "Try again later; if it keeps happening, tell an administrator.",
    ),
    "configuration": (
        "The bot is not set up correctly",
        ":wrench: *The bot cannot search*: its Posit Connect API key is invalid or lacks "
        "permission. Tell an administrator; they can run `connect-user-bot check`.",
    ),
    "internal": (
        "Something went wrong",
        ":x: *Something went wrong* while searching. Try again.",
    ),
}


def search_failure_message(kind: str, prefix: str) -> dict[str, Any]:
    """Why a search failed (unknown kinds read as "internal")."""
    fallback, text = _SEARCH_FAILURES.get(kind, _SEARCH_FAILURES["internal"])
    return _message(
        fallback,
        [
            _section_md(text),
            _context(_plain(f"Search: “{_clip(prefix, _PREFIX)}”")),
        ],
    )


# --- modals --------------------------------------------------------------------------------------


def _check_metadata(private_metadata: str) -> None:
    # Cutting would corrupt what the submission handler reads back: refuse loudly instead.
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError("private_metadata longer than Slack allows")


def justification_modal(*, person: PersonValue, private_metadata: str) -> dict[str, Any]:
    """Ask the requester why; raises ValueError if private_metadata is over 3,000 chars."""
    _check_metadata(private_metadata)
    return {
        "type": "modal",
        "callback_id": VIEW_JUSTIFICATION,
        "title": _plain("Request account"),
        "submit": _plain("Send request"),
        "close": _plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            _section_md("Request a Posit Connect account for:"),
            _section_plain(_person_text(person.full_name, person.username, person.email)),
            {
                "type": "input",
                "block_id": JUSTIFICATION_BLOCK,
                "label": _plain("Why do they need an account?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": JUSTIFICATION_INPUT,
                    "multiline": True,
                    "min_length": JUSTIFICATION_MIN_LENGTH,
                    "max_length": JUSTIFICATION_MAX_LENGTH,
                    "placeholder": _plain("e.g. joins the forecasting team and publishes reports"),
                },
            },
            _context(_md("The approvers see this with your name before they decide.")),
        ],
    }


def outdated_form_view() -> dict[str, Any]:
    """Shown in place of a form the bot no longer understands."""
    return {
        "type": "modal",
        "title": _plain("Form out of date"),
        "close": _plain("Close"),
        "blocks": [
            _section_md(
                "This form is no longer supported. Close it and start again with "
                "`/connect-user search &lt;prefix&gt;`."
            )
        ],
    }


def deny_modal(*, request_id: str, username: str) -> dict[str, Any]:
    """Ask an approver why they deny; private_metadata is the request id."""
    _check_metadata(request_id)
    return {
        "type": "modal",
        "callback_id": VIEW_DENY_REASON,
        "title": _plain("Deny request"),
        "submit": _plain("Deny"),
        "close": _plain("Cancel"),
        "private_metadata": request_id,
        "blocks": [
            _section_plain(f"Deny the account request for {_clip(username, _USERNAME)}?"),
            {
                "type": "input",
                "block_id": DENY_REASON_BLOCK,
                "label": _plain("Reason (the requester will see it)"),
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


# --- the approval card ---------------------------------------------------------------------------

_CARD_STATUS: dict[RequestState, str] = {
    RequestState.PENDING: "waiting for an approver",
    RequestState.PROVISIONING: "creating the account",
    RequestState.APPROVED: "approved",
    RequestState.ALREADY_EXISTS: "already had an account",
    RequestState.DENIED: "denied",
    RequestState.EXPIRED: "expired",
    RequestState.CANCELLED: "cancelled",
}


def _decided(req: ProvisioningRequest) -> str:
    when = f" {_slack_date(req.decided_at)}" if req.decided_at else ""
    return f"{_mention(req.decided_by)}{when}"


def approval_card(req: ProvisioningRequest, *, connect_url: str) -> dict[str, Any]:
    """The approver-channel card, rendered from the request's state (re-render to update)."""
    asked = f"{_mention(req.requester_id)} asks for a Posit Connect account for:"
    blocks: list[dict[str, Any]] = [
        _header("Connect account request"),
        _section_md(asked),
        _person_fields(req.full_name, req.username, req.email),
        _section_plain(
            "Justification:\n" + (_clip(req.justification, _LONG_TEXT, multiline=True) or "(none)")
        ),
    ]
    meta: list[dict[str, Any]] = []
    if req.created_at:
        meta.append(_md(f"Requested {_slack_date(req.created_at)}"))
    meta.append(_plain(f"Request {_clip(req.id, _GUID)}"))
    blocks.append(_context(*meta))
    blocks.extend(_card_state_blocks(req, connect_url))
    status = _CARD_STATUS.get(req.state, str(req.state))
    fallback = f"Connect account request for {_fallback_value(req.username)}: {status}"
    return _message(fallback, blocks)


def _card_state_blocks(req: ProvisioningRequest, connect_url: str) -> list[dict[str, Any]]:
    state = req.state
    if state is RequestState.PENDING:
        blocks: list[dict[str, Any]] = []
        if req.last_error:
            blocks.append(
                _section_plain(
                    "⚠ The last attempt to create the account failed: "
                    + _clip(req.last_error, _ERROR, multiline=True)
                )
            )
        blocks.append(
            {
                "type": "actions",
                "block_id": APPROVAL_ACTIONS_BLOCK,
                "elements": [
                    _button("Approve", action_id=ACTION_APPROVE, value=req.id, style="primary"),
                    _button("Deny", action_id=ACTION_DENY, value=req.id, style="danger"),
                ],
            }
        )
        return blocks
    if state is RequestState.PROVISIONING:
        if req.last_error:
            # The PUT's outcome is unknown: no buttons until it is settled, and say why.
            return [
                _section_md(
                    f":mag: Checking whether the account was created… "
                    f"(approved by {_mention(req.decided_by)})"
                ),
                _section_plain(_clip(req.last_error, _ERROR, multiline=True)),
            ]
        return [
            _section_md(
                f":hourglass_flowing_sand: Creating the account… "
                f"(approved by {_mention(req.decided_by)})"
            )
        ]
    if state is RequestState.APPROVED:
        return [
            _section_md(
                f":white_check_mark: Approved by {_decided(req)}; the account was created."
            ),
            *_outcome_note(req),
            *_guid_blocks(req.connect_guid, connect_url),
        ]
    if state is RequestState.ALREADY_EXISTS:
        return [
            _section_plain(f"{_clip(req.username, _USERNAME)} already had an account."),
            _section_md(f":information_source: Approved by {_decided(req)}; nothing was created."),
            *_outcome_note(req),
            *_guid_blocks(req.connect_guid, connect_url),
        ]
    if state is RequestState.DENIED:
        return [
            _section_md(f":no_entry_sign: Denied by {_decided(req)}"),
            _section_plain(
                "Reason: " + (_clip(req.deny_reason, _REASON, multiline=True) or "(none given)")
            ),
        ]
    if state is RequestState.EXPIRED:
        when = f" {_slack_date(req.updated_at)}" if req.updated_at else ""
        return [
            _section_md(
                f":hourglass: Expired{when}: nobody approved or denied it in time, so it can no "
                "longer be decided. The requester can ask again."
            )
        ]
    return [
        _section_md(
            f":heavy_multiplication_x: Cancelled by {_decided(req)}; "
            "there is nothing left to decide."
        )
    ]


def _outcome_note(req: ProvisioningRequest) -> list[dict[str, Any]]:
    """What settling an unclear answer from Connect found, when the state alone does not say."""
    if not req.outcome_note:
        return []
    return [_context(_plain(_clip(req.outcome_note, _ERROR, multiline=True)))]


# --- messages to the requester and the new account holder ----------------------------------------


def _permalink_block(card_permalink: str | None) -> list[dict[str, Any]]:
    if not card_permalink:
        return []
    return [_context(_md(f"<{_link_url(card_permalink)}|View the request>"))]


def _who(req: ProvisioningRequest) -> str:
    name = _clip(req.full_name, _NAME)
    user = _clip(req.username, _USERNAME)
    return f"{name} ({user})" if name else user or "(no username)"


def requester_confirmation(
    req: ProvisioningRequest, *, card_permalink: str | None
) -> dict[str, Any]:
    """Replaces the requester's ephemeral search results once the card is posted."""
    blocks = [
        _section_md(":outbox_tray: Your request was sent to the approvers:"),
        _section_plain(_who(req)),
        _context(_md("You will get a direct message when someone decides.")),
        *_permalink_block(card_permalink),
    ]
    if req.state is RequestState.PENDING:
        blocks.append(
            {
                "type": "actions",
                "block_id": CANCEL_ACTIONS_BLOCK,
                "elements": [_cancel_button(req)],
            }
        )
    return _message(
        f"Your request for {_fallback_value(req.username)} was sent to the approvers", blocks
    )


def _cancel_button(req: ProvisioningRequest) -> dict[str, Any]:
    return _button("Cancel request", action_id=ACTION_CANCEL, value=req.id)


def requester_card_failed(req: ProvisioningRequest) -> dict[str, Any]:
    """The request is stored, but the approver channel could not be reached: say so, plainly."""
    return _message(
        f"Your request for {_fallback_value(req.username)} is saved, but approvers were not told",
        [
            _section_md(
                ":warning: Your request is saved, but I couldn't post it to the approver channel. "
                "Please tell a Connect administrator: `connect-user-bot check` shows why."
            ),
            _section_plain(_who(req)),
        ],
    )


def duplicate_request_message(
    existing: ProvisioningRequest, *, card_permalink: str | None
) -> dict[str, Any]:
    status = _CARD_STATUS.get(existing.state, str(existing.state))
    return _message(
        f"There is already a request for {_fallback_value(existing.username)} ({status})",
        [
            _section_md(
                f":repeat: {_mention(existing.requester_id)} already asked for an account for "
                f"this person; that request is {status}:"
            ),
            _section_plain(_who(existing)),
            *_permalink_block(card_permalink),
        ],
    )


def requester_outcome_message(req: ProvisioningRequest, *, connect_url: str) -> dict[str, Any]:
    """The DM telling the requester what became of their request."""
    user = _fallback_value(req.username)
    state = req.state
    extra: list[dict[str, Any]] = []
    if state is RequestState.APPROVED:
        fallback = f"Your request for {user} was approved"
        line = f":white_check_mark: Your request was approved by {_decided(req)}. Account created:"
        extra = _guid_blocks(req.connect_guid, connect_url)
    elif state is RequestState.ALREADY_EXISTS:
        fallback = f"{user} already had a Posit Connect account"
        line = ":information_source: This person already had a Posit Connect account:"
        extra = _guid_blocks(req.connect_guid, connect_url)
    elif state is RequestState.DENIED:
        fallback = f"Your request for {user} was denied"
        line = f":no_entry_sign: Your request was denied by {_decided(req)}:"
        reason = _clip(req.deny_reason, _REASON, multiline=True) or "(none given)"
        extra = [_section_plain(f"Reason: {reason}")]
    elif req.last_error and state.is_active:
        fallback = f"Your request for {user} is still pending: creating the account failed"
        line = (
            ":warning: Creating the account failed, so your request is still pending. "
            "The approvers can try again; an administrator may need to fix the bot first."
        )
        extra = [_section_plain(f"Error: {_clip(req.last_error, _ERROR, multiline=True)}")]
    elif state is RequestState.EXPIRED:
        fallback = f"Your request for {user} expired"
        waited = ""
        if req.created_at and req.updated_at:
            waited = f" within {_duration(_aware(req.updated_at) - _aware(req.created_at))}"
        line = (
            f":hourglass: Your request expired: nobody approved or denied it{waited}. "
            "You can ask again with `/connect-user search`."
        )
    elif state is RequestState.CANCELLED:
        fallback = f"Your request for {user} was cancelled"
        line = ":heavy_multiplication_x: Your request was cancelled."
    else:
        status = _CARD_STATUS.get(state, str(state))
        fallback = f"Your request for {user}: {status}"
        line = f"Your request is {status}:"
    if state in (RequestState.APPROVED, RequestState.ALREADY_EXISTS):
        extra = [*_outcome_note(req), *extra]
    return _message(fallback, [_section_md(line), _section_plain(_who(req)), *extra])


def welcome_message(*, connect_url: str, username: str) -> dict[str, Any]:
    url = _link_url(connect_url.rstrip("/") + "/connect/")
    return _message(
        "Your Posit Connect account is ready",
        [
            _section_md(
                f":wave: Welcome! Your Posit Connect account is ready: <{url}|Open Connect>"
            ),
            _context(_plain(f"Username: {_clip(username, _USERNAME)}")),
        ],
    )


# --- refusals to approvers -----------------------------------------------------------------------


# Members of the approver channel who may still not decide, and why; "{what}" is what they tried.
_NOT_A_DECIDER = {
    "guest": (
        "Guest accounts can't {what}, even as members of the approver channel: only full "
        "members of the organisation decide."
    ),
    "external": (
        "People from another organisation (Slack Connect) can't {what}, even as members of the "
        "approver channel: only full members of this organisation decide."
    ),
    "bot": "Bots and apps can't {what}.",
    "deactivated": "This Slack account is deactivated, so it can't {what}.",
    "unsafe_channel": (
        "Nobody can {what} right now: the approver channel is public, so anyone in the workspace "
        "could join it and approve. An administrator must make it private (or, if that is "
        "meant, allow a public approver channel in the bot's configuration)."
    ),
}


def approval_refusal(
    reason_kind: str, *, state: RequestState | str | None = None
) -> dict[str, Any]:
    """Why a click on Approve/Deny was refused (unknown kinds get a generic line).

    Kinds: "not_approver", "guest", "external", "bot", "deactivated", "unsafe_channel",
    "self_approval", "already_decided" (pass the request's `state`), "not_found",
    "cannot_check".
    """
    if reason_kind == "not_approver":
        text = "Only members of the approver channel can approve or deny requests."
    elif reason_kind in _NOT_A_DECIDER:
        text = _NOT_A_DECIDER[reason_kind].format(what="approve or deny requests")
    elif reason_kind == "self_approval":
        text = "You cannot approve your own request; another approver has to."
    elif reason_kind == "already_decided" and state == RequestState.EXPIRED:
        # Nobody decided an expired request: "already decided" would send people looking for who.
        text = (
            "This request expired: nobody approved or denied it in time, so it can no longer be "
            "decided. The requester can ask again."
        )
    elif reason_kind == "already_decided" and state == RequestState.CANCELLED:
        text = "The requester cancelled this request, so there is nothing left to decide."
    elif reason_kind == "already_decided":
        known = {s.value for s in RequestState}
        status = _CARD_STATUS[RequestState(state)] if state in known else None
        text = "This request was already decided" + (f" ({status})." if status else ".")
    elif reason_kind == "cannot_check":
        text = (
            "I can't check who may approve right now (Slack didn't tell me the approver channel's "
            "members). Nothing was changed; please try again in a minute."
        )
    elif reason_kind == "not_found":
        text = "That request no longer exists."
    else:
        text = "That action could not be completed."
    return _message(text, [_section_md(text)])


# --- lifecycle: reminders, cancelling, the pending and status lists, the Home tab ---------------

# How many requests the lists ask the store for; the builders show what fits and count the rest.
PENDING_LIST_LIMIT = 20
STATUS_LIST_LIMIT = 15
HOME_MINE_LIMIT = 10
HOME_WAITING_LIMIT = 20

_LIST_JUSTIFICATION = (200, 1200)


def _duration(delta: timedelta) -> str:
    """The largest whole unit ("3 days", "5 hours", "12 minutes"), never "0 days"."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _link(url: str | None, label: str) -> str | None:
    return f"<{_link_url(url)}|{label}>" if url else None


def _fit_rows(
    prefix: list[dict[str, Any]],
    rows: Iterable[list[dict[str, Any]]],
    footer: Callable[[int], list[dict[str, Any]]],
    *,
    max_blocks: int,
    budget: int = BLOCKS_JSON_BUDGET,
) -> tuple[list[dict[str, Any]], int]:
    """`prefix`, then whole rows while the blocks and the JSON budget allow, then `footer(shown)`.

    Rows are never cut in half: a request is listed completely or counted in "and N more".
    """
    kept: list[dict[str, Any]] = []
    kept_len = sum(_blocks_json_len([block]) - 2 for block in prefix)
    shown = 0
    for row in rows:
        row_len = sum(_blocks_json_len([block]) - 2 for block in row)
        tail = footer(shown + 1)
        tail_len = sum(_blocks_json_len([block]) - 2 for block in tail)
        count = len(prefix) + len(kept) + len(row) + len(tail)
        if count > max_blocks or _list_json_len(kept_len + row_len + tail_len, count) > budget:
            break
        kept.extend(row)
        kept_len += row_len
        shown += 1
    return [*prefix, *kept, *footer(shown)], shown


def _more(total: int, shown: int, hint: str = "") -> list[dict[str, Any]]:
    if total <= shown:
        return []
    return [_context(_md(f"…and {total - shown} more.{' ' + hint if hint else ''}"))]


def approver_reminder(req: ProvisioningRequest, *, now: datetime) -> dict[str, Any]:
    """Posted in the card's thread when a request has waited too long."""
    waited = ""
    if req.created_at:
        waited = f" for {_duration(_aware(now) - _aware(req.created_at))}"
    text = (
        f":alarm_clock: This request has been waiting{waited}. "
        "Approvers: please approve or deny it with the buttons on the card above."
    )
    return _message(
        f"Reminder: the request for {_fallback_value(req.username)} is still waiting{waited}",
        [_section_md(text)],
    )


def cancelled_message(req: ProvisioningRequest) -> dict[str, Any]:
    """The answer to the requester's own Cancel click."""
    return _message(
        f"You cancelled your request for {_fallback_value(req.username)}",
        [
            _section_md(
                ":heavy_multiplication_x: You cancelled your request; the approvers' card says so."
            ),
            _section_plain(_who(req)),
        ],
    )


def decision_notice(req: ProvisioningRequest) -> dict[str, Any]:
    """Shown on the approver's Home tab after their click there decided a request."""
    status = _CARD_STATUS.get(req.state, str(req.state))
    return _message(
        f"Your decision on the request for {_fallback_value(req.username)} was recorded",
        [
            _section_md(":ballot_box_with_check: Your decision was recorded:"),
            _section_plain(f"{_who(req)}: {status}"),
        ],
    )


def cancel_refusal(reason_kind: str, *, state: RequestState | str | None = None) -> dict[str, Any]:
    """Why a Cancel click changed nothing. Kinds: "not_requester", "already_decided" (pass the
    request's `state`), "not_found"; anything else gets a generic line."""
    if reason_kind == "not_requester":
        text = "Only the person who asked for this account can cancel the request."
    elif reason_kind == "already_decided":
        known = {s.value for s in RequestState}
        status = _CARD_STATUS[RequestState(state)] if state in known else None
        text = "This request can no longer be cancelled" + (f": it is {status}." if status else ".")
    elif reason_kind == "not_found":
        text = "That request no longer exists."
    else:
        text = "That action could not be completed."
    return _message(text, [_section_md(text)])


def _waiting_context(req: ProvisioningRequest, permalink: str | None) -> dict[str, Any]:
    parts = [f"Requested by {_mention(req.requester_id)}"]
    if req.created_at:
        parts[0] += f" {_slack_date(req.created_at)}"
    parts.append(_link(permalink, "Open the card") or "the card was not posted")
    return _context(_md(" · ".join(parts)))


def _waiting_summary(req: ProvisioningRequest) -> dict[str, Any]:
    why = _clip(req.justification, _LIST_JUSTIFICATION, multiline=True) or "(none)"
    return _section_plain(f"{_who(req)}\nWhy: {why}")


def pending_message(
    requests: Sequence[ProvisioningRequest],
    *,
    total: int,
    permalinks: Mapping[str, str | None],
) -> dict[str, Any]:
    """`/connect-user pending`: what waits for a decision, oldest first, linked to the cards."""
    total = max(total, len(requests))
    if not requests:
        return _message(
            "Nothing is waiting for approval",
            [_section_md(":white_check_mark: Nothing is waiting for approval.")],
        )
    head = [_header(f"Waiting for approval ({total})")]
    rows = (
        [_waiting_summary(req), _waiting_context(req, permalinks.get(req.id))] for req in requests
    )
    blocks, _ = _fit_rows(
        head,
        rows,
        lambda n: _more(total, n, "The oldest are listed first."),
        max_blocks=MAX_MESSAGE_BLOCKS,
    )
    fallback = f"{total} request{'' if total == 1 else 's'} waiting for approval"
    return _message(fallback, blocks)


def pending_refusal(reason_kind: str, *, approver_channel: str) -> dict[str, Any]:
    """Why `/connect-user pending` shows nothing ("not_approver", "cannot_check", or one of
    the reasons a member of the approver channel may not decide)."""
    if reason_kind == "cannot_check":
        fallback = "I can't check who may approve right now"
        text = (
            "I can't check who may approve right now (Slack didn't tell me the approver "
            "channel's members). Please try again in a minute."
        )
    elif reason_kind in _NOT_A_DECIDER:
        text = _NOT_A_DECIDER[reason_kind].format(what="see or decide the requests waiting")
        fallback = text
    else:
        fallback = "Only approvers can see the requests waiting for approval"
        channel = (
            f"<#{approver_channel}>" if _SLACK_ID_RE.fullmatch(approver_channel) else "the channel"
        )
        text = (
            f"Sorry, only approvers (members of {channel}) can see the requests waiting for "
            "approval. `/connect-user status` shows your own requests."
        )
    return _message(fallback, [_section_md(text)])


def _status_row(
    req: ProvisioningRequest, permalink: str | None, *, cancellable: bool = True
) -> list[dict[str, Any]]:
    status = _CARD_STATUS.get(req.state, str(req.state))
    summary = _section_plain(f"{_who(req)}: {status}")
    if cancellable and req.state is RequestState.PENDING:
        summary["accessory"] = _cancel_button(req)
    parts = []
    if req.created_at:
        parts.append(f"Requested {_slack_date(req.created_at)}")
    if req.decided_by and req.state in (
        RequestState.APPROVED,
        RequestState.ALREADY_EXISTS,
        RequestState.DENIED,
    ):
        parts.append(f"decided by {_decided(req)}")
    link = _link(permalink, "View the request")
    if link:
        parts.append(link)
    return [summary, _context(_md(" · ".join(parts)))] if parts else [summary]


def status_message(
    requests: Sequence[ProvisioningRequest],
    *,
    total: int,
    permalinks: Mapping[str, str | None],
) -> dict[str, Any]:
    """`/connect-user status`: the caller's own requests, most recent first."""
    total = max(total, len(requests))
    if not requests:
        return _message(
            "You have not requested any accounts",
            [
                _section_md(
                    "You haven't requested any accounts yet. Find someone with "
                    "`/connect-user search &lt;prefix&gt;`."
                )
            ],
        )
    head = [_header("Your account requests")]
    rows = (_status_row(req, permalinks.get(req.id)) for req in requests)
    blocks, shown = _fit_rows(
        head,
        rows,
        lambda n: _more(total, n, "Older ones are not shown."),
        max_blocks=MAX_MESSAGE_BLOCKS,
    )
    fallback = f"Your account requests: {shown} of {total}"
    return _message(fallback, blocks)


def _home_decide_row(
    req: ProvisioningRequest, permalink: str | None, viewer_id: str
) -> list[dict[str, Any]]:
    row = [_waiting_summary(req), _waiting_context(req, permalink)]
    if req.requester_id == viewer_id:
        # The server would refuse anyway; not offering the buttons says why up front.
        row.append(_context(_md("This is your own request: another approver has to decide.")))
        return row
    row.append(
        {
            "type": "actions",
            "block_id": (HOME_DECIDE_BLOCK_PREFIX + req.id)[:MAX_ID],
            "elements": [
                _button("Approve", action_id=ACTION_APPROVE, value=req.id, style="primary"),
                _button("Deny", action_id=ACTION_DENY, value=req.id, style="danger"),
            ],
        }
    )
    return row


def home_view(
    *,
    viewer_id: str,
    mine: Sequence[ProvisioningRequest],
    mine_total: int,
    waiting: Sequence[ProvisioningRequest] | None,
    waiting_total: int = 0,
    cannot_check_approver: bool = False,
    permalinks: Mapping[str, str | None],
    notice: dict[str, Any] | None = None,
    not_a_decider: str | None = None,
) -> dict[str, Any]:
    """The App Home tab: "My requests" and, for approvers (`waiting` not None), "Waiting for
    approval" with the same Approve/Deny buttons as the cards (the same handlers decide them).

    `notice` is a message from this module (a refusal, an outcome) shown at the top: Home tab
    clicks have no response_url, so the answer to a click is shown where it was made.
    `not_a_decider` ("guest", "external", "bot", "deactivated", "unsafe_channel") says why a
    member of the approver channel sees no waiting list.
    """
    head: list[dict[str, Any]] = [_header("Posit Connect accounts")]
    if notice:
        head.extend(notice.get("blocks") or [])
        head.append({"type": "divider"})
    head.append(
        _context(
            _md(
                "Ask for an account with `/connect-user search &lt;prefix&gt;`; "
                "`/connect-user help` lists every command."
            )
        )
    )

    mine_total = max(mine_total, len(mine))
    head.append(_header("My requests"))
    if not mine:
        head.append(_section_md("You haven't requested any accounts yet."))
        blocks = head
    else:
        # Approvers need room for what waits on them: their own list gets at most half.
        spare = BLOCKS_JSON_BUDGET - _blocks_json_len(head)
        budget = BLOCKS_JSON_BUDGET if waiting is None else BLOCKS_JSON_BUDGET - spare // 2
        blocks, _ = _fit_rows(
            head,
            (_status_row(req, permalinks.get(req.id)) for req in mine),
            lambda n: _more(mine_total, n, "`/connect-user status` lists them."),
            max_blocks=MAX_VIEW_BLOCKS // 2 if waiting is not None else MAX_VIEW_BLOCKS,
            budget=budget,
        )

    if waiting is not None:
        waiting_total = max(waiting_total, len(waiting))
        blocks = [*blocks, {"type": "divider"}, _header(f"Waiting for approval ({waiting_total})")]
        if not waiting:
            blocks.append(_section_md(":white_check_mark: Nothing is waiting for approval."))
        else:
            blocks, _ = _fit_rows(
                blocks,
                (_home_decide_row(req, permalinks.get(req.id), viewer_id) for req in waiting),
                lambda n: _more(waiting_total, n, "`/connect-user pending` lists them all."),
                max_blocks=MAX_VIEW_BLOCKS,
            )
    elif cannot_check_approver:
        blocks.append(
            _context(
                _md(
                    "I couldn't check whether you are an approver just now, so requests waiting "
                    "for approval are not shown. Open this tab again in a minute."
                )
            )
        )
    elif not_a_decider in _NOT_A_DECIDER:
        what = "see or decide the requests waiting for approval"
        blocks.append(_context(_md(_NOT_A_DECIDER[not_a_decider].format(what=what))))
    return {"type": "home", "blocks": blocks}
