"""Block Kit primitives: text objects, blocks, buttons, messages, and fitting rows into Slack's
limits. Callers pass the bot's own words or text already clipped by `text.clip`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from bot.slack.ui.limits import BLOCKS_JSON_BUDGET, MAX_BUTTON_VALUE

# A block, a message ({"text": fallback, "blocks": [...]}) and a view, as Slack's JSON.
Block = dict[str, Any]
Message = dict[str, Any]
View = dict[str, Any]


def plain(text: str) -> dict[str, Any]:
    # Slack rejects empty text objects; callers pass bot words or clipped values.
    return {"type": "plain_text", "text": text or "-", "emoji": False}


def md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text)}


def section_plain(text: str) -> Block:
    return {"type": "section", "text": plain(text)}


def section_md(text: str) -> Block:
    return {"type": "section", "text": md(text)}


def context(*elements: dict[str, Any]) -> Block:
    return {"type": "context", "elements": list(elements)}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, *, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError("button value longer than Slack allows")
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def message(text: str, blocks: list[Block]) -> Message:
    return {"text": text, "blocks": blocks}


def blocks_json_len(blocks: list[Block]) -> int:
    return len(json.dumps(blocks))


def list_json_len(item_lengths_total: int, count: int) -> int:
    """What `len(json.dumps(items))` is, from the items' own JSON lengths: "[" + ", ".join + "]".

    Lets the builders measure each block once while they add blocks, instead of re-serialising
    the whole message for every candidate row (quadratic in the rows)."""
    return 2 + item_lengths_total + 2 * max(0, count - 1)


def fit_rows(
    prefix: list[Block],
    rows: Iterable[list[Block]],
    footer: Callable[[int], list[Block]],
    *,
    max_blocks: int,
    budget: int = BLOCKS_JSON_BUDGET,
) -> tuple[list[Block], int]:
    """`prefix`, then whole rows while the blocks and the JSON budget allow, then `footer(shown)`.

    Rows are never cut in half: a request is listed completely or counted in "and N more".
    """
    kept: list[Block] = []
    kept_len = sum(blocks_json_len([block]) - 2 for block in prefix)
    shown = 0
    for row in rows:
        row_len = sum(blocks_json_len([block]) - 2 for block in row)
        tail = footer(shown + 1)
        tail_len = sum(blocks_json_len([block]) - 2 for block in tail)
        count = len(prefix) + len(kept) + len(row) + len(tail)
        if count > max_blocks or list_json_len(kept_len + row_len + tail_len, count) > budget:
            break
        kept.extend(row)
        kept_len += row_len
        shown += 1
    return [*prefix, *kept, *footer(shown)], shown


def more(total: int, shown: int, hint: str = "") -> list[Block]:
    """The "…and N more." under a list that could not show everything."""
    if total <= shown:
        return []
    return [context(md(f"…and {total - shown} more.{' ' + hint if hint else ''}"))]
