"""What a requester sees when asking for several people at once: the list their names resolved
to (who is ready, who is not and why) with the button that opens the form, the form, and what
filing did."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import assert_never

from bot.slack.ui.describe import account_role, kind_words, status_words
from bot.slack.ui.ids import (
    ACTION_REQUEST_BATCH,
    BATCH_REQUEST_BLOCK,
    DENY_REASON_BLOCK,
    DENY_REASON_INPUT,
    JUSTIFICATION_BLOCK,
    JUSTIFICATION_INPUT,
    VIEW_BATCH_REQUEST,
    VIEW_DENY_ALL,
)
from bot.slack.ui.kit import (
    Block,
    Message,
    View,
    button,
    context,
    md,
    message,
    plain,
    section_md,
    section_plain,
)
from bot.slack.ui.limits import MAX_BUTTON_VALUE, MAX_PRIVATE_METADATA
from bot.slack.ui.modals import request_role_blocks
from bot.slack.ui.refusals import approval_refusal, file_problem_message
from bot.slack.ui.text import USERNAME, clip
from bot.workflow.batches import PART_SIZE, BatchDecision, BatchFiled, EntryStatus, ResolvedEntry
from bot.workflow.outcomes import Duplicate, NotFiled

# Lines per section: Slack's 3,000 characters a text, with room for long names.
_LINES_PER_SECTION = 10
_TYPED = (80, 480)


def _line(item: ResolvedEntry) -> str:
    typed = clip(item.typed, _TYPED)
    entry = item.entry
    name = f"{clip(entry.full_name, USERNAME)} ({clip(entry.username, USERNAME)})" if entry else ""
    status = item.status
    match status:
        case EntryStatus.READY:
            return f"✅ {typed}: {name}"
        case EntryStatus.HAS_ACCOUNT:
            role = account_role(entry.user_role) if entry else "unknown"
            return f"👤 {typed}: {name} has an account already (role: {role})"
        case EntryStatus.PENDING:
            return f"⏳ {typed}: {name} has a request waiting already"
        case EntryStatus.NOT_FOUND:
            return f"❓ {typed}: nobody in the directory has this exact username or email"
        case EntryStatus.AMBIGUOUS:
            return f"⚠️ {typed}: several directory entries have it; use search to pick one"
        case EntryStatus.TOO_BROAD:
            return f"⚠️ {typed}: Connect found too many matches to tell; use search"
        case EntryStatus.UNAVAILABLE:
            return f"⚠️ {typed}: Connect did not answer; try again"
        case EntryStatus.REPEATED:
            return f"↩️ {typed}: the same person as an earlier name in the list"
        case _:
            assert_never(status)


def batch_value(usernames: Sequence[str]) -> str | None:
    """The button's value: the usernames, JSON (None when they would not fit a button)."""
    value = json.dumps(list(usernames), separators=(",", ":"), ensure_ascii=True)
    return value if len(value) <= MAX_BUTTON_VALUE else None


def decode_batch_value(value: object) -> list[str] | None:
    """The usernames a button (or a form) carried; None for anything malformed. Never raises."""
    if not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE:
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, list) or not data or len(data) > 50:
        return None
    if not all(isinstance(name, str) and 0 < len(name) <= 254 for name in data):
        return None
    return list(data)


def resolution_message(resolved: Sequence[ResolvedEntry]) -> Message:
    """The names the requester typed, each as it resolved, and the button for the ready ones."""
    ready = [
        item.entry.username for item in resolved if item.status is EntryStatus.READY and item.entry
    ]
    lines = [_line(item) for item in resolved]
    blocks: list[Block] = [
        section_md(f":busts_in_silhouette: {len(resolved)} names, {len(ready)} ready to request:")
    ]
    for start in range(0, len(lines), _LINES_PER_SECTION):
        blocks.append(section_plain("\n".join(lines[start : start + _LINES_PER_SECTION])))
    value = batch_value(ready) if ready else None
    if value is not None:
        blocks.append(
            {
                "type": "actions",
                "block_id": BATCH_REQUEST_BLOCK,
                "elements": [
                    button(
                        f"Request access for {len(ready)} people"
                        if len(ready) > 1
                        else "Request access for 1 person",
                        action_id=ACTION_REQUEST_BATCH,
                        value=value,
                        style="primary",
                    )
                ],
            }
        )
    elif ready:
        blocks.append(section_md("These names are too long for one button: ask for fewer at once."))
    blocks.append(
        context(
            md(
                "Names match exactly (username or email), never a prefix: "
                "`/connect-user search` finds people by part of a name."
            )
        )
    )
    return message(f"{len(ready)} of {len(resolved)} names are ready to request", blocks)


def batch_request_modal(
    usernames: Sequence[str], *, roles: Sequence[str] | None, response_url: str | None
) -> View:
    """Why these people need accounts, and which role (the same for all)."""
    metadata = json.dumps({"u": list(usernames), "r": response_url}, separators=(",", ":"))
    if len(metadata) > MAX_PRIVATE_METADATA:
        metadata = json.dumps({"u": list(usernames)}, separators=(",", ":"))
    if len(metadata) > MAX_PRIVATE_METADATA:
        raise ValueError("private_metadata longer than Slack allows")
    names = ", ".join(clip(name, USERNAME) for name in usernames)
    return {
        "type": "modal",
        "callback_id": VIEW_BATCH_REQUEST,
        "title": plain("Request accounts"),
        "submit": plain("Send requests"),
        "close": plain("Cancel"),
        "private_metadata": metadata,
        "blocks": [
            section_md(f"Request Posit Connect accounts for {len(usernames)} people:"),
            section_plain(clip(names, (2900, 2900))),
            {
                "type": "input",
                "block_id": JUSTIFICATION_BLOCK,
                "label": plain("Why do they need accounts?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": JUSTIFICATION_INPUT,
                    "multiline": True,
                    "min_length": 3,
                    "max_length": 1000,
                    "placeholder": plain("e.g. the new analysts joining the forecasting team"),
                },
            },
            *request_role_blocks(roles),
            context(md("Each person is a request of its own; the approvers see them on one card.")),
        ],
    }


def decode_batch_metadata(metadata: str) -> tuple[list[str] | None, str | None]:
    try:
        data = json.loads(metadata)
        usernames = decode_batch_value(json.dumps(data["u"]))
        response_url = data.get("r")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None, None
    return usernames, response_url if isinstance(response_url, str) else None


def batch_filed_message(filed: BatchFiled) -> Message:
    """What filing did: how many requests went to the approvers, and who was not asked for."""
    lines = []
    for username, outcome in filed.refused:
        who = clip(username, USERNAME)
        if isinstance(outcome, Duplicate):
            state = status_words(outcome.existing.state)
            lines.append(
                f"{who}: {kind_words(outcome.existing.kind)} was asked for already ({state})"
            )
        elif isinstance(outcome, NotFiled):
            said = file_problem_message(outcome.problem, username=username)["text"]
            lines.append(f"{who}: {said}")
    blocks: list[Block] = []
    if filed.filed:
        blocks.append(
            section_md(
                f":outbox_tray: {len(filed.filed)} requests were sent to the approvers on one card"
                + (f" per {PART_SIZE} people" if len(filed.filed) > PART_SIZE else "")
                + ". You will get a direct message as each is decided."
            )
        )
    if lines:
        blocks.append(section_md(f":warning: {len(lines)} not asked for:"))
        for start in range(0, len(lines), _LINES_PER_SECTION):
            blocks.append(section_plain("\n".join(lines[start : start + _LINES_PER_SECTION])))
    if not blocks:
        blocks.append(section_md("Nobody was asked for."))
    return message(f"{len(filed.filed)} requests sent to the approvers", blocks)


def deny_all_modal(*, value: str, count: int) -> View:
    return {
        "type": "modal",
        "callback_id": VIEW_DENY_ALL,
        "title": plain("Deny all"),
        "submit": plain("Deny all"),
        "close": plain("Cancel"),
        "private_metadata": value,
        "blocks": [
            section_plain(f"Deny the {count} requests of this card still waiting?"),
            {
                "type": "input",
                "block_id": DENY_REASON_BLOCK,
                "label": plain("Reason (each requester will see it)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": DENY_REASON_INPUT,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": 500,
                },
            },
        ],
    }


def batch_decision_message(decision: BatchDecision, *, what: str) -> Message:
    """To the approver who pressed Approve all / Deny all: what was decided, who was skipped."""
    blocks: list[Block] = [
        section_md(
            f":ballot_box_with_check: {what.capitalize()}: {len(decision.decided)} requests."
        )
    ]
    if decision.skipped:
        lines = [
            f"{clip(request.username, USERNAME)}: {approval_refusal(reason)['text']}"
            for request, reason in decision.skipped
        ]
        blocks.append(section_md(f":warning: Skipped {len(lines)}:"))
        for start in range(0, len(lines), _LINES_PER_SECTION):
            blocks.append(section_plain("\n".join(lines[start : start + _LINES_PER_SECTION])))
    return message(f"{what.capitalize()}: {len(decision.decided)} requests", blocks)
