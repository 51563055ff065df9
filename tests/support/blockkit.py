"""The Block Kit validator: what Slack refuses, and what this bot promises on top of that.

One set of rules, two users:

- the fake Slack answers like Slack: `message_problem` (chat.postMessage, chat.update,
  chat.postEphemeral), `response_payload_problem` (response_url posts) and `view_problems`
  (views.open/update/publish) apply **Slack's rules** and return Slack's answer;
- tests check the bot's own payloads with `assert_valid_message`, `assert_valid_view` and
  `assert_valid_home_view`: Slack's rules (the same functions) **plus the bot's house rules**
  (`HOUSE_*` below): a fallback `text` on every message, only the block and element types the bot
  uses, every interactive element named by an `action_id`, inputs only in modals.

Limits follow /work/shared/slack-platform.md and Slack's Block Kit reference. The whole-message
budget is `len(json.dumps(blocks))` with the default separators and ASCII escapes, which is
pessimistic (an emoji counts 12 characters): 12,000 by that measure stays under the ~13,000 at
which Slack answers `msg_blocks_too_long`.

Problems read like Slack's: ``[ERROR] must be less than 76 characters [json-pointer:/blocks/0/…]``.

Helpers to look inside payloads (`iter_text_objects`, `buttons`, `assert_fallback_inert`, …) are
at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "all_text",
    "assert_fallback_inert",
    "assert_valid_home_view",
    "assert_valid_message",
    "assert_valid_view",
    "blocks_problems",
    "buttons",
    "iter_text_objects",
    "message_problem",
    "mrkdwn_texts",
    "plain_texts",
    "problem",
    "response_payload_problem",
    "view_problems",
]

# ---------------------------------------------------------------------------------------------
# Slack's limits (https://docs.slack.dev/reference/block-kit and method docs)
# ---------------------------------------------------------------------------------------------
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
MAX_BLOCKS_JSON = 12_000  # measured by `blocks_json_chars`; Slack's undocumented limit is ~13k
MAX_SECTION_TEXT = 3_000
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_MARKDOWN_BLOCK_TEXT = 12_000
MAX_ID = 255  # block_id, action_id, callback_id, external_id
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2_000
MAX_URL = 3_000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_OPTIONS = 100
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_PLACEHOLDER = 150
MAX_INPUT_LABEL = 2_000
MAX_INPUT_LENGTH = 3_000  # plain_text_input min_length / max_length
MAX_VIEW_TITLE = 24  # also submit and close
MAX_PRIVATE_METADATA = 3_000

KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "call",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)

# ---------------------------------------------------------------------------------------------
# The bot's house rules: stricter than Slack, checked on the bot's own payloads only
# ---------------------------------------------------------------------------------------------
HOUSE_BLOCK_TYPES = frozenset({"header", "section", "context", "actions", "divider", "input"})
HOUSE_ELEMENT_TYPES = frozenset({"button", "plain_text_input"})
# What a modal's input block may hold: text, a choice of fixed options (a role), or Connect
# groups whose options the bot gives as the person types (a block_suggestion).
HOUSE_INPUT_ELEMENT_TYPES = frozenset(
    {"plain_text_input", "static_select", "multi_external_select"}
)
# Slack truncates `text` at 40,000; the bot's fallbacks are one line.
HOUSE_MAX_FALLBACK_TEXT = 4_000
# Slack has no whole-payload budget for views; the bot keeps its views under the messages' one.
HOUSE_MAX_VIEW_BLOCKS_JSON = MAX_BLOCKS_JSON

_ZWSP = "\u200b"


def problem(msg: str, path: str) -> str:
    """One problem, worded as Slack words them in `response_metadata.messages`."""
    return f"[ERROR] {msg} [json-pointer:{path}]"


# ---------------------------------------------------------------------------------------------
# Slack's rules
# ---------------------------------------------------------------------------------------------
def _text_problems(
    obj: Any, path: str, max_len: int, *, plain_only: bool = False, required: bool = True
) -> list[str]:
    if obj is None:
        return [problem("missing required field", path)] if required else []
    if not isinstance(obj, dict):
        return [problem("must be a text object", path)]
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        return [problem(f"must be one of {', '.join(allowed)}", f"{path}/type")]
    problems: list[str] = []
    if kind == "mrkdwn" and "emoji" in obj:
        problems.append(problem("emoji is only for plain_text", f"{path}/emoji"))
    if kind == "plain_text" and "verbatim" in obj:
        problems.append(problem("verbatim is only for mrkdwn", f"{path}/verbatim"))
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(problem("must be more than 0 characters", f"{path}/text"))
    elif not text.strip():
        problems.append(problem("must not be blank", f"{path}/text"))
    elif len(text) > max_len:
        problems.append(problem(f"must be less than {max_len + 1} characters", f"{path}/text"))
    return problems


def _str_problems(
    obj: dict[str, Any], key: str, path: str, max_len: int, *, min_len: int = 1
) -> list[str]:
    """An optional string field: absent, or a string of min_len..max_len characters."""
    if key not in obj:
        return []
    value = obj[key]
    if not isinstance(value, str):
        return [problem("must be a string", path)]
    if len(value) < min_len:
        return [problem(f"must be more than {min_len - 1} characters", path)]
    if len(value) > max_len:
        return [problem(f"must be less than {max_len + 1} characters", path)]
    return []


def _option_problems(options: Any, path: str, *, max_items: int) -> list[str]:
    if not isinstance(options, list):
        return [problem("must be an array", path)]
    problems: list[str] = []
    if len(options) > max_items:
        problems.append(problem(f"no more than {max_items} items allowed", path))
    for i, opt in enumerate(options):
        p = f"{path}/{i}"
        if not isinstance(opt, dict):
            problems.append(problem("must be an option object", p))
            continue
        problems += _text_problems(opt.get("text"), f"{p}/text", MAX_OPTION_TEXT)
        problems += _str_problems(opt, "value", f"{p}/value", MAX_OPTION_VALUE)
    return problems


def _confirm_problems(confirm: Any, path: str) -> list[str]:
    if confirm is None:
        return []
    if not isinstance(confirm, dict):
        return [problem("must be a confirm object", path)]
    return (
        _text_problems(confirm.get("title"), f"{path}/title", 100, plain_only=True)
        + _text_problems(confirm.get("text"), f"{path}/text", 300)
        + _text_problems(confirm.get("confirm"), f"{path}/confirm", 30, plain_only=True)
        + _text_problems(confirm.get("deny"), f"{path}/deny", 30, plain_only=True)
    )


def _element_problems(el: Any, path: str) -> list[str]:
    if not isinstance(el, dict):
        return [problem("must be an element object", path)]
    kind = el.get("type")
    problems = _str_problems(el, "action_id", f"{path}/action_id", MAX_ID)
    problems += _confirm_problems(el.get("confirm"), f"{path}/confirm")
    if "placeholder" in el:
        problems += _text_problems(
            el["placeholder"], f"{path}/placeholder", MAX_PLACEHOLDER, plain_only=True
        )
    if kind == "button":
        problems += _text_problems(el.get("text"), f"{path}/text", MAX_BUTTON_TEXT, plain_only=True)
        problems += _str_problems(el, "value", f"{path}/value", MAX_BUTTON_VALUE)
        problems += _str_problems(el, "url", f"{path}/url", MAX_URL)
        if el.get("style") not in (None, "primary", "danger"):
            problems.append(problem("must be one of primary, danger", f"{path}/style"))
    elif kind in ("static_select", "multi_static_select"):
        if "options" in el:
            problems += _option_problems(el["options"], f"{path}/options", max_items=MAX_OPTIONS)
            initial = el.get("initial_option")
            if initial is not None and initial not in el["options"]:
                # Slack refuses the view (invalid_arguments) unless it is one of the options.
                problems.append(problem("must be one of the options", f"{path}/initial_option"))
        elif "option_groups" not in el:
            problems.append(problem("must provide options or option_groups", path))
    elif kind in ("external_select", "multi_external_select"):
        min_query = el.get("min_query_length", 3)
        if not isinstance(min_query, int) or min_query < 0:
            problems.append(problem("must be a non-negative integer", f"{path}/min_query_length"))
        if kind == "multi_external_select" and "max_selected_items" in el:
            most = el["max_selected_items"]
            if not isinstance(most, int) or most < 1:
                problems.append(problem("must be at least 1", f"{path}/max_selected_items"))
    elif kind in ("radio_buttons", "checkboxes"):
        problems += _option_problems(el.get("options"), f"{path}/options", max_items=10)
    elif kind == "overflow":
        opts = el.get("options")
        problems += _option_problems(opts, f"{path}/options", max_items=5)
        if isinstance(opts, list) and len(opts) < 2:
            problems.append(problem("must provide at least 2 items", f"{path}/options"))
    elif kind == "plain_text_input":
        lengths = {"min_length": 0, "max_length": MAX_INPUT_LENGTH}
        for key in lengths:
            value = el.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or not 0 <= value <= MAX_INPUT_LENGTH:
                problems.append(
                    problem(f"must be between 0 and {MAX_INPUT_LENGTH}", f"{path}/{key}")
                )
            else:
                lengths[key] = value
        if lengths["min_length"] > lengths["max_length"]:
            problems.append(problem("must not be more than max_length", f"{path}/min_length"))
    elif kind == "image":
        problems += _str_problems(el, "image_url", f"{path}/image_url", MAX_URL)
        if not el.get("alt_text"):
            problems.append(problem("missing required field", f"{path}/alt_text"))
    elif kind is None:
        problems.append(problem("missing required field", f"{path}/type"))
    return problems


def blocks_problems(blocks: Any, *, max_blocks: int, path: str = "/blocks") -> list[str]:
    """Slack's rules for a list of blocks (the whole-message budget is checked apart)."""
    if not isinstance(blocks, list):
        return [problem("must be an array", path)]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(problem(f"no more than {max_blocks} items allowed", path))
    seen_block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{path}/{i}"
        if not isinstance(block, dict):
            problems.append(problem("must be a block object", at))
            continue
        kind = block.get("type")
        if kind not in KNOWN_BLOCK_TYPES:
            problems.append(problem(f"unknown block type {kind!r}", f"{at}/type"))
            continue
        problems += _str_problems(block, "block_id", f"{at}/block_id", MAX_ID)
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_block_ids:
                problems.append(problem("duplicate block_id", f"{at}/block_id"))
            seen_block_ids.add(block_id)
        if kind == "section":
            if block.get("text") is None and block.get("fields") is None:
                problems.append(problem("must provide text or fields", at))
            problems += _text_problems(
                block.get("text"), f"{at}/text", MAX_SECTION_TEXT, required=False
            )
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list):
                    problems.append(problem("must be an array", f"{at}/fields"))
                elif not fields:
                    problems.append(problem("must provide at least 1 item", f"{at}/fields"))
                else:
                    if len(fields) > MAX_SECTION_FIELDS:
                        problems.append(
                            problem(
                                f"no more than {MAX_SECTION_FIELDS} items allowed", f"{at}/fields"
                            )
                        )
                    for j, f in enumerate(fields):
                        problems += _text_problems(f, f"{at}/fields/{j}", MAX_SECTION_FIELD_TEXT)
            if block.get("accessory") is not None:
                problems += _element_problems(block["accessory"], f"{at}/accessory")
        elif kind == "header":
            problems += _text_problems(
                block.get("text"), f"{at}/text", MAX_HEADER_TEXT, plain_only=True
            )
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                problems.append(problem("must provide at least 1 item", f"{at}/elements"))
                continue
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                problems.append(
                    problem(f"no more than {MAX_ACTIONS_ELEMENTS} items allowed", f"{at}/elements")
                )
            seen_action_ids: set[str] = set()
            for j, el in enumerate(elements):
                problems += _element_problems(el, f"{at}/elements/{j}")
                aid = el.get("action_id") if isinstance(el, dict) else None
                if isinstance(aid, str):
                    if aid in seen_action_ids:
                        problems.append(
                            problem("duplicate action_id", f"{at}/elements/{j}/action_id")
                        )
                    seen_action_ids.add(aid)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                problems.append(problem("must provide at least 1 item", f"{at}/elements"))
                continue
            if len(elements) > MAX_CONTEXT_ELEMENTS:
                problems.append(
                    problem(f"no more than {MAX_CONTEXT_ELEMENTS} items allowed", f"{at}/elements")
                )
            for j, el in enumerate(elements):
                if isinstance(el, dict) and el.get("type") in ("plain_text", "mrkdwn"):
                    problems += _text_problems(el, f"{at}/elements/{j}", MAX_SECTION_TEXT)
                else:
                    problems += _element_problems(el, f"{at}/elements/{j}")
        elif kind == "input":
            problems += _text_problems(
                block.get("label"), f"{at}/label", MAX_INPUT_LABEL, plain_only=True
            )
            if "hint" in block:
                problems += _text_problems(
                    block["hint"], f"{at}/hint", MAX_INPUT_LABEL, plain_only=True
                )
            if block.get("element") is None:
                problems.append(problem("missing required field", f"{at}/element"))
            else:
                problems += _element_problems(block["element"], f"{at}/element")
        elif kind == "image":
            if not block.get("image_url") and not block.get("slack_file"):
                problems.append(problem("must provide image_url or slack_file", at))
            problems += _str_problems(block, "image_url", f"{at}/image_url", MAX_URL)
            problems += _str_problems(block, "alt_text", f"{at}/alt_text", 2000)
            if not block.get("alt_text"):
                problems.append(problem("missing required field", f"{at}/alt_text"))
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                problems.append(problem("must be more than 0 characters", f"{at}/text"))
            elif len(text) > MAX_MARKDOWN_BLOCK_TEXT:
                problems.append(
                    problem(
                        f"must be less than {MAX_MARKDOWN_BLOCK_TEXT + 1} characters",
                        f"{at}/text",
                    )
                )
    return problems


def blocks_json_chars(blocks: Any) -> int:
    """The whole-message budget's measure: pessimistic (ASCII escapes, default separators)."""
    return len(json.dumps(blocks))


def message_problem(args: dict[str, Any]) -> dict[str, Any] | None:
    """Slack's answer to a bad chat.postMessage/update/postEphemeral, or None."""
    text = args.get("text")
    blocks = args.get("blocks")
    attachments = args.get("attachments")
    if isinstance(blocks, str):
        return {"ok": False, "error": "invalid_blocks_format"}
    if text is not None and len(str(text)) > MAX_MESSAGE_TEXT:
        return {"ok": False, "error": "msg_too_long"}
    if blocks is not None:
        problems = blocks_problems(blocks, max_blocks=MAX_MESSAGE_BLOCKS)
        if problems:
            return {
                "ok": False,
                "error": "invalid_blocks",
                "errors": problems,
                "response_metadata": {"messages": problems},
            }
        if blocks_json_chars(blocks) > MAX_BLOCKS_JSON:
            return {"ok": False, "error": "msg_blocks_too_long"}
    if not text and not blocks and not attachments:
        return {"ok": False, "error": "no_text"}
    return None


def response_payload_problem(body: dict[str, Any]) -> str | None:
    """Slack's 400 answer text for a bad response_url payload, or None."""
    if body.get("delete_original"):
        return None
    found = message_problem(body)
    if found is None:
        return None
    error = found["error"]
    return "invalid_blocks" if error in ("msg_blocks_too_long", "invalid_blocks_format") else error


def view_problems(view: Any) -> list[str]:
    """Slack's rules for a modal (views.open/push/update) or a Home tab (views.publish)."""
    if isinstance(view, str):
        return [problem("must be a view object (invalid JSON)", "/view")]
    if not isinstance(view, dict):
        return [problem("missing required field", "/view")]
    problems: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        problems.append(problem("must be one of modal, home", "/view/type"))
    if kind == "modal":
        problems += _text_problems(
            view.get("title"), "/view/title", MAX_VIEW_TITLE, plain_only=True
        )
        for key in ("submit", "close"):
            if key in view:
                problems += _text_problems(
                    view[key], f"/view/{key}", MAX_VIEW_TITLE, plain_only=True
                )
    elif kind == "home":
        for key in ("title", "submit", "close"):
            if key in view:
                problems.append(problem("a Home tab has none", f"/view/{key}"))
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        problems.append(problem("missing required field", "/view/blocks"))
    else:
        problems += blocks_problems(blocks, max_blocks=MAX_VIEW_BLOCKS, path="/view/blocks")
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if kind == "modal" and has_input and view.get("submit") is None:
            problems.append(problem("submit is required when an input block is present", "/view"))
    problems += _str_problems(
        view, "private_metadata", "/view/private_metadata", MAX_PRIVATE_METADATA, min_len=0
    )
    problems += _str_problems(view, "callback_id", "/view/callback_id", MAX_ID)
    problems += _str_problems(view, "external_id", "/view/external_id", MAX_ID)
    return problems


# ---------------------------------------------------------------------------------------------
# Slack's rules plus the house rules: the checks tests make on the bot's own payloads
# ---------------------------------------------------------------------------------------------
def _house_element_problems(
    el: Any, path: str, allowed: frozenset[str] = HOUSE_ELEMENT_TYPES
) -> list[str]:
    if not isinstance(el, dict):
        return []  # Slack's rules already said so
    kind = el.get("type")
    if kind not in allowed:
        return [problem(f"the bot uses no {kind!r} elements", f"{path}/type")]
    if not el.get("action_id"):
        return [problem("the bot names every interactive element", f"{path}/action_id")]
    return []


def _house_blocks_problems(blocks: Any, *, path: str, inputs: bool) -> list[str]:
    if not isinstance(blocks, list):
        return []  # Slack's rules already said so
    problems: list[str] = []
    if not blocks:
        problems.append(problem("the bot sends at least one block", path))
    for i, block in enumerate(blocks):
        block_path = f"{path}/{i}"
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind not in HOUSE_BLOCK_TYPES:
            problems.append(problem(f"the bot uses no {kind!r} blocks", f"{block_path}/type"))
        elif kind == "input" and not inputs:
            problems.append(problem("the bot asks for input in modals only", f"{block_path}/type"))
        elif kind == "context":
            for j, el in enumerate(block.get("elements") or []):
                if not (isinstance(el, dict) and el.get("type") in ("plain_text", "mrkdwn")):
                    problems.append(
                        problem("the bot's context elements are text", f"{block_path}/elements/{j}")
                    )
        elif kind == "section" and block.get("accessory") is not None:
            problems += _house_element_problems(block["accessory"], f"{block_path}/accessory")
        elif kind == "actions":
            for j, el in enumerate(block.get("elements") or []):
                problems += _house_element_problems(el, f"{block_path}/elements/{j}")
        elif kind == "input" and block.get("element") is not None:
            problems += _house_element_problems(
                block["element"], f"{block_path}/element", HOUSE_INPUT_ELEMENT_TYPES
            )
    return problems


def _assert_no_problems(what: str, problems: list[str]) -> None:
    assert not problems, f"Slack or the house rules refuse this {what}:\n" + "\n".join(problems)


def assert_valid_message(msg: dict[str, Any]) -> None:
    """A `{"text", "blocks"}` message Slack accepts, with the fallback text the bot always sends."""
    assert isinstance(msg, dict), "a message is a dict"
    problems: list[str] = []
    found = message_problem(msg)
    if found is not None:
        problems += found.get("errors") or [problem(found["error"], "/")]
    text = msg.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(problem("the bot sends a fallback text with every message", "/text"))
    elif len(text) > HOUSE_MAX_FALLBACK_TEXT:
        problems.append(problem(f"fallback text is {len(text)} characters", "/text"))
    blocks = msg.get("blocks")
    if blocks is None:
        problems.append(problem("the bot's messages have blocks", "/blocks"))
    problems += _house_blocks_problems(blocks, path="/blocks", inputs=False)
    _assert_no_problems("message", problems)
    json.dumps(msg)  # serialisable


def _assert_valid_view(view: dict[str, Any], kind: str) -> None:
    assert isinstance(view, dict), "a view is a dict"
    problems = view_problems(view)
    if view.get("type") != kind:
        problems.append(problem(f"must be {kind}", "/view/type"))
    blocks = view.get("blocks")
    problems += _house_blocks_problems(blocks, path="/view/blocks", inputs=kind == "modal")
    if isinstance(blocks, list) and blocks_json_chars(blocks) > HOUSE_MAX_VIEW_BLOCKS_JSON:
        size = blocks_json_chars(blocks)
        problems.append(problem(f"blocks JSON is {size} characters", "/view/blocks"))
    _assert_no_problems(kind, problems)
    json.dumps(view)


def assert_valid_view(view: dict[str, Any]) -> None:
    """A modal Slack's `views.open` / `views.update` accepts."""
    _assert_valid_view(view, "modal")


def assert_valid_options(options: Any) -> None:
    """An answer to a block_suggestion: at most 100 options, each text ≤ 75, value ≤ 150."""
    problems = _option_problems(options, "/options", max_items=MAX_OPTIONS)
    _assert_no_problems("options", problems)


def assert_valid_home_view(view: dict[str, Any]) -> None:
    """An App Home view `views.publish` accepts: no title, submit or inputs; at most 100 blocks."""
    _assert_valid_view(view, "home")


# ---------------------------------------------------------------------------------------------
# Looking inside payloads
# ---------------------------------------------------------------------------------------------
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


def request_buttons(payload: Any) -> list[dict[str, Any]]:
    """The buttons acting on requests: not the Home tab's "Request my Connect account"."""
    return [b for b in buttons(payload) if b.get("action_id") != "request_my_account"]


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
