"""What the bot's buttons and forms carry, and Slack brings back with a click or a submission.

A click's value and a form's private_metadata come back as the person who clicked saw them:
they are input, read here and nowhere else. Approve, Deny and Cancel carry a request id; Request
account carries the person (only the username is used when the request is filed: everything else
is read from the directory again); the justification form carries that button's value and the
click's response_url. Change role carries the account's GUID (the account is read from Connect
again); its form carries the GUID, the username it showed and the click's response_url.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from bot.slack.ui.limits import MAX_BUTTON_VALUE, MAX_PRIVATE_METADATA
from bot.workflow.models import DirectoryEntry

# A request id as the bot makes them (16 hex digits; older ones up to 32).
_REQUEST_ID_RE = re.compile(r"^[0-9a-f]{8,32}$")
_CORRELATION_RE = re.compile(r"[0-9a-f]{16}")
# What a Change role button may carry: a Connect GUID's characters (only ever looked up).
_ACCOUNT_GUID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")


def is_request_id(value: str) -> bool:
    """Whether a button value or form metadata can name a request (it is looked up after)."""
    return _REQUEST_ID_RE.match(value) is not None


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


def person_value_too_long(user: DirectoryEntry) -> bool:
    return len(encode_person_value(user, "0" * 16)) > MAX_BUTTON_VALUE


def encode_justification_metadata(value: str, response_url: str | None) -> str:
    """The justification form's private_metadata: the Request-account button's value and the
    click's response_url (left out when both would not fit: the confirmation then goes by DM)."""
    metadata = json.dumps({"v": value, "r": response_url}, separators=(",", ":"))
    if len(metadata) > MAX_PRIVATE_METADATA:
        metadata = json.dumps({"v": value}, separators=(",", ":"))
    return metadata


def decode_justification_metadata(metadata: str) -> tuple[PersonValue | None, str | None]:
    """The person and the response_url a justification form carried; (None, None) for a form
    this version of the bot did not make. Never raises."""
    try:
        data = json.loads(metadata)
        person = decode_person_value(data["v"])
        response_url = data.get("r")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None, None
    return person, response_url if isinstance(response_url, str) else None


def is_account_guid(value: object) -> bool:
    """Whether a Change role button's value can name an account (it is looked up after)."""
    return isinstance(value, str) and _ACCOUNT_GUID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class RoleChangeTarget:
    """The account a role-change form is for: its GUID (what the request is filed for) and the
    username the form showed (for the answers only)."""

    guid: str
    username: str


def encode_role_change_metadata(guid: str, username: str, response_url: str | None) -> str:
    """The role-change form's private_metadata; the response_url is left out (the answer then
    goes by DM), then the username cut, when they would not fit."""
    metadata = json.dumps({"g": guid, "u": username, "r": response_url}, separators=(",", ":"))
    if len(metadata) > MAX_PRIVATE_METADATA:
        metadata = json.dumps({"g": guid, "u": username[:200]}, separators=(",", ":"))
    return metadata


def decode_role_change_metadata(metadata: str) -> tuple[RoleChangeTarget | None, str | None]:
    """The account and the response_url a role-change form carried; (None, None) for a form
    this version of the bot did not make. Never raises."""
    try:
        data = json.loads(metadata)
        guid, username, response_url = data["g"], data.get("u", ""), data.get("r")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None, None
    if not is_account_guid(guid) or not isinstance(username, str):
        return None, None
    return (
        RoleChangeTarget(guid=guid, username=username),
        response_url if isinstance(response_url, str) else None,
    )


@dataclass(frozen=True, slots=True)
class ApprovalForm:
    """Where an Approve click that opened the confirmation was made, carried to its submission
    (a modal's submission has no response_url of its own): the request, and how to answer."""

    request_id: str
    response_url: str | None = None
    channel: str | None = None
    from_home: bool = False
    # The role the request asked for when the confirmation opened: an approval of it loses to
    # a raise made since (the approver did not see that question).
    role_asked: str | None = None


def encode_approval_metadata(form: ApprovalForm) -> str:
    """The confirmation's private_metadata (the response_url is left out when it would not fit:
    the answer then goes ephemeral in the channel, or by DM)."""
    data: dict[str, object] = {"i": form.request_id, "h": int(form.from_home)}
    if form.role_asked:
        data["a"] = form.role_asked
    if form.channel:
        data["c"] = form.channel
    if form.response_url:
        data["r"] = form.response_url
    metadata = json.dumps(data, separators=(",", ":"))
    if len(metadata) > MAX_PRIVATE_METADATA:
        data.pop("r", None)
        metadata = json.dumps(data, separators=(",", ":"))
    return metadata


def decode_approval_metadata(metadata: str) -> ApprovalForm | None:
    """What a confirmation carried; None for anything this version of the bot did not make.
    Never raises."""
    try:
        data = json.loads(metadata)
        request_id = data["i"]
        response_url, channel, home = data.get("r"), data.get("c"), data.get("h")
        asked = data.get("a")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if not isinstance(request_id, str) or not is_request_id(request_id):
        return None
    return ApprovalForm(
        request_id=request_id,
        response_url=response_url if isinstance(response_url, str) else None,
        channel=channel if isinstance(channel, str) else None,
        from_home=home == 1,
        role_asked=asked if isinstance(asked, str) else None,
    )


@dataclass(frozen=True, slots=True)
class LockTarget:
    """The account a lock or unlock form is for (its GUID, read again at filing) and whether
    it asks to lock (True) or unlock it."""

    guid: str
    lock: bool


def encode_lock_metadata(target: LockTarget, response_url: str | None) -> str:
    """The lock form's private_metadata (the response_url left out when it would not fit: the
    answer then goes by DM)."""
    values = {"g": target.guid, "l": target.lock, "r": response_url}
    metadata = json.dumps(values, separators=(",", ":"))
    if len(metadata) > MAX_PRIVATE_METADATA:
        metadata = json.dumps({"g": target.guid, "l": target.lock}, separators=(",", ":"))
    return metadata


def decode_lock_metadata(metadata: str) -> tuple[LockTarget | None, str | None]:
    """What a lock form carried; (None, None) for a form this version did not make."""
    try:
        data = json.loads(metadata)
        guid, lock, response_url = data["g"], data["l"], data.get("r")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None, None
    if not is_account_guid(guid) or not isinstance(lock, bool):
        return None, None
    return LockTarget(guid=guid, lock=lock), response_url if isinstance(response_url, str) else None


# -- groups ------------------------------------------------------------------------------------


def group_name_fits(name: str) -> bool:
    """Whether a directory group's name fits a Request group button's value (it is the value)."""
    return 0 < len(name) <= MAX_BUTTON_VALUE


def decode_group_value(value: object) -> str | None:
    """The group name a Request group button carried (only ever looked up again)."""
    if not isinstance(value, str) or not group_name_fits(value) or not value.strip():
        return None
    return value


def encode_group_metadata(name: str, response_url: str | None) -> str:
    """The group request form's private_metadata: the group's name and the click's
    response_url (left out when both would not fit: the answer then goes by DM)."""
    metadata = json.dumps({"g": name, "r": response_url}, separators=(",", ":"))
    if len(metadata) > MAX_PRIVATE_METADATA:
        metadata = json.dumps({"g": name}, separators=(",", ":"))
    return metadata


def decode_group_metadata(metadata: str) -> tuple[str | None, str | None]:
    """The group name and the response_url a group request form carried; (None, None) for a
    form this version of the bot did not make. Never raises."""
    try:
        data = json.loads(metadata)
        name, response_url = data["g"], data.get("r")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None, None
    name = decode_group_value(name)
    if name is None:
        return None, None
    return name, response_url if isinstance(response_url, str) else None
