"""Reusable checks that a message or modal payload is one Slack would accept.

Import from tests: `from tests.support.blockkit import assert_valid_message, assert_valid_view`.
Limits follow /work/shared/slack-platform.md and Slack's Block Kit reference; the whole-message
budget is measured as `len(json.dumps(blocks))` (pessimistic: an emoji counts 12 characters).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_BLOCKS_JSON = 12_000
MAX_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_FALLBACK_TEXT = 4000  # Slack truncates `text` at 40,000; ours are one line

_BLOCK_TYPES = {"header", "section", "context", "actions", "divider", "input"}
_ZWSP = "\u200b"


def _check_text(obj: Any, where: str, *, max_len: int = MAX_TEXT, plain_only: bool = False) -> None:
    assert isinstance(obj, dict), f"{where}: text object must be a dict"
    assert obj.get("type") in ("plain_text", "mrkdwn"), f"{where}: bad text type {obj.get('type')}"
    if plain_only:
        assert obj["type"] == "plain_text", f"{where}: must be plain_text"
    text = obj.get("text")
    assert isinstance(text, str), f"{where}: text must be a string"
    assert 1 <= len(text) <= max_len, f"{where}: text length {len(text)} not in 1..{max_len}"
    assert text.strip(), f"{where}: text is blank"
    if obj["type"] == "mrkdwn":
        assert "emoji" not in obj, f"{where}: emoji is only for plain_text"
    else:
        assert "verbatim" not in obj, f"{where}: verbatim is only for mrkdwn"


def _check_id(value: Any, where: str) -> None:
    assert isinstance(value, str) and 1 <= len(value) <= MAX_ID, f"{where}: bad id {value!r}"


def _check_button(el: dict[str, Any], where: str) -> None:
    _check_text(el.get("text"), f"{where}.text", max_len=MAX_BUTTON_TEXT, plain_only=True)
    _check_id(el.get("action_id"), f"{where}.action_id")
    if "value" in el:
        value = el["value"]
        assert isinstance(value, str), f"{where}: value must be a string"
        assert 1 <= len(value) <= MAX_BUTTON_VALUE, f"{where}: value length {len(value)}"
    if "url" in el:
        assert 1 <= len(el["url"]) <= MAX_URL, f"{where}: url too long"
    if "style" in el:
        assert el["style"] in ("primary", "danger"), f"{where}: bad style"


def _check_element(el: dict[str, Any], where: str) -> None:
    kind = el.get("type")
    if kind == "button":
        _check_button(el, where)
    elif kind == "plain_text_input":
        _check_id(el.get("action_id"), f"{where}.action_id")
        lo, hi = el.get("min_length", 0), el.get("max_length", MAX_TEXT)
        assert 0 <= lo <= hi <= MAX_TEXT, f"{where}: bad min/max length"
        if "placeholder" in el:
            _check_text(el["placeholder"], f"{where}.placeholder", max_len=150, plain_only=True)
    else:
        raise AssertionError(f"{where}: unexpected element type {kind!r}")


def _check_block(block: dict[str, Any], where: str, *, in_view: bool) -> None:
    kind = block.get("type")
    assert kind in _BLOCK_TYPES, f"{where}: unexpected block type {kind!r}"
    if "block_id" in block:
        _check_id(block["block_id"], f"{where}.block_id")
    if kind == "header":
        _check_text(block.get("text"), f"{where}.text", max_len=MAX_HEADER_TEXT, plain_only=True)
    elif kind == "section":
        assert "text" in block or "fields" in block, f"{where}: section needs text or fields"
        if "text" in block:
            _check_text(block["text"], f"{where}.text")
        if "fields" in block:
            fields = block["fields"]
            assert 1 <= len(fields) <= 10, f"{where}: 1..10 fields"
            for i, f in enumerate(fields):
                _check_text(f, f"{where}.fields[{i}]", max_len=MAX_FIELD_TEXT)
        if "accessory" in block:
            _check_element(block["accessory"], f"{where}.accessory")
    elif kind == "context":
        elements = block.get("elements", [])
        assert 1 <= len(elements) <= 10, f"{where}: 1..10 context elements"
        for i, el in enumerate(elements):
            _check_text(el, f"{where}.elements[{i}]")
    elif kind == "actions":
        elements = block.get("elements", [])
        assert 1 <= len(elements) <= 25, f"{where}: 1..25 action elements"
        ids = [el.get("action_id") for el in elements]
        assert len(ids) == len(set(ids)), f"{where}: action_ids must be unique in a block"
        for i, el in enumerate(elements):
            _check_element(el, f"{where}.elements[{i}]")
    elif kind == "input":
        assert in_view, f"{where}: input blocks belong in views"
        _check_text(block.get("label"), f"{where}.label", max_len=2000, plain_only=True)
        _check_element(block.get("element", {}), f"{where}.element")


def _check_blocks(blocks: Any, *, max_blocks: int, in_view: bool) -> None:
    assert isinstance(blocks, list), "blocks must be a list"
    assert 1 <= len(blocks) <= max_blocks, f"{len(blocks)} blocks (max {max_blocks})"
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block_ids must be unique"
    for i, block in enumerate(blocks):
        _check_block(block, f"blocks[{i}]", in_view=in_view)
    size = len(json.dumps(blocks))
    assert size <= MAX_BLOCKS_JSON, f"blocks JSON is {size} chars (max {MAX_BLOCKS_JSON})"


def assert_valid_message(msg: dict[str, Any]) -> None:
    """A `{"text", "blocks"}` message Slack accepts."""
    assert isinstance(msg, dict)
    text = msg.get("text")
    assert isinstance(text, str) and text.strip(), "a message needs a fallback text"
    assert len(text) <= MAX_FALLBACK_TEXT, f"fallback text is {len(text)} chars"
    _check_blocks(msg.get("blocks"), max_blocks=MAX_MESSAGE_BLOCKS, in_view=False)
    json.dumps(msg)  # serialisable


def assert_valid_view(view: dict[str, Any]) -> None:
    """A modal Slack's `views.open` / `views.update` accepts."""
    assert view.get("type") == "modal"
    _check_text(view.get("title"), "title", max_len=MAX_VIEW_TITLE, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            _check_text(view[key], key, max_len=MAX_VIEW_TITLE, plain_only=True)
    if "callback_id" in view:
        _check_id(view["callback_id"], "callback_id")
    metadata = view.get("private_metadata", "")
    assert isinstance(metadata, str) and len(metadata) <= MAX_PRIVATE_METADATA
    blocks = view.get("blocks")
    _check_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS, in_view=True)
    if any(b.get("type") == "input" for b in blocks):
        assert "submit" in view, "a modal with inputs needs a submit button"
    json.dumps(view)


def assert_valid_home_view(view: dict[str, Any]) -> None:
    """An App Home view `views.publish` accepts: no title, submit or inputs; at most 100 blocks."""
    assert view.get("type") == "home"
    for key in ("title", "submit", "close"):
        assert key not in view, f"a Home tab view has no {key}"
    if "callback_id" in view:
        _check_id(view["callback_id"], "callback_id")
    metadata = view.get("private_metadata", "")
    assert isinstance(metadata, str) and len(metadata) <= MAX_PRIVATE_METADATA
    blocks = view.get("blocks")
    _check_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS, in_view=True)
    assert not any(b.get("type") == "input" for b in blocks), "no inputs on the Home tab"
    json.dumps(view)


# --- helpers to look inside payloads -------------------------------------------------------------


def iter_text_objects(payload: Any) -> Iterator[dict[str, Any]]:
    """Every text object (`{"type": "plain_text"|"mrkdwn", "text": …}`) anywhere in a payload."""
    if isinstance(payload, dict):
        if payload.get("type") in ("plain_text", "mrkdwn") and isinstance(payload.get("text"), str):
            yield payload
            return
        for value in payload.values():
            yield from iter_text_objects(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from iter_text_objects(item)


def mrkdwn_texts(payload: Any) -> list[str]:
    return [t["text"] for t in iter_text_objects(payload) if t["type"] == "mrkdwn"]


def plain_texts(payload: Any) -> list[str]:
    return [t["text"] for t in iter_text_objects(payload) if t["type"] == "plain_text"]


def all_text(msg: dict) -> str:
    """Every text of every text object, one per line."""
    return "\n".join(t["text"] for t in iter_text_objects(msg))


def buttons(payload: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(payload, dict):
        if payload.get("type") == "button":
            found.append(payload)
        for value in payload.values():
            found.extend(buttons(value))
    elif isinstance(payload, list):
        for item in payload:
            found.extend(buttons(item))
    return found


def assert_fallback_inert(text: str) -> None:
    """The fallback `text` cannot ping, link or format: the bot writes only escaped data there.

    No raw `<` or `>` (so no `<!channel>`, `<@U…>`, links), every `&` starts one of Slack's three
    entities, and every `*`, `_`, `~`, `` ` `` sits between zero-width spaces.
    """
    assert "<" not in text and ">" not in text, f"raw angle bracket in fallback {text!r}"
    stripped = re.sub(r"&(amp|lt|gt);", "", text)
    assert "&" not in stripped, f"raw & in fallback {text!r}"
    for match in re.finditer(r"[*_~`]", text):
        i = match.start()
        before = text[i - 1] if i > 0 else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        assert before == _ZWSP and after == _ZWSP, f"formatting char not neutralised in {text!r}"
