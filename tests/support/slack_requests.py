"""Requests exactly as Slack sends them to the app's ``POST /slack/events``, signed.

    body = slash_command_body(text="alice@example.com", response_url=fake.new_response_url())
    resp = await post_signed(client, body, SIGNING_SECRET)

Bodies are ``application/x-www-form-urlencoded`` like Slack's: slash commands as plain fields,
interactions as ``payload=<json>``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

__all__ = [
    "API_APP_ID",
    "VERIFICATION_TOKEN",
    "block_actions_body",
    "block_suggestion_body",
    "event_callback_body",
    "home_block_actions_body",
    "new_trigger_id",
    "post_signed",
    "sign",
    "slack_escape",
    "slash_command_body",
    "view_submission_body",
]

API_APP_ID = "A0APP"
VERIFICATION_TOKEN = "verification-token-not-used-by-bolt"
TEAM_DOMAIN = "test"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_trigger_counter = itertools.count(1)


def new_trigger_id() -> str:
    """A fresh trigger_id shaped like Slack's (``<digits>.<digits>.<hex>``); unique per call."""
    return f"{int(time.time() * 1000)}.{next(_trigger_counter)}.{secrets.token_hex(16)}"


def _action_ts() -> str:
    return f"{time.time():.6f}"


def sign(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with ``body``: timestamp, ``v0=`` HMAC signature and content type."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": FORM_CONTENT_TYPE,
    }


def slack_escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` as Slack does in slash command text (always, even with
    ``should_escape: false``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _user_name(user_id: str) -> str:
    return user_id.lower().replace("_", ".")


def slash_command_body(
    *,
    text: str,
    user_id: str = "U_REQ",
    team_id: str = "T0001",
    channel_id: str = "C_GENERAL",
    command: str = "/connect-user",
    response_url: str,
    trigger_id: str | None = None,
    user_name: str | None = None,
    channel_name: str | None = None,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = API_APP_ID,
    enterprise_id: str | None = None,
) -> str:
    """A slash command body, form-encoded in Slack's field order.

    ``text`` goes in as given: call :func:`slack_escape` yourself to get what Slack really sends.
    ``trigger_id`` defaults to a fresh one (Slack's are single-use).
    """
    fields: list[tuple[str, str]] = [
        ("token", VERIFICATION_TOKEN),
        ("team_id", team_id),
        ("team_domain", team_domain),
    ]
    if enterprise_id is not None:
        fields += [("enterprise_id", enterprise_id), ("enterprise_name", "Test Enterprise")]
    fields += [
        ("channel_id", channel_id),
        ("channel_name", channel_name or channel_id.lower().removeprefix("c_")),
        ("user_id", user_id),
        ("user_name", user_name or _user_name(user_id)),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id or new_trigger_id()),
    ]
    return urlencode(fields)


def _user(user_id: str, team_id: str) -> dict[str, str]:
    name = _user_name(user_id)
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _payload_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def block_actions_body(
    *,
    action_id: str,
    value: str,
    user_id: str,
    response_url: str | None = None,
    ephemeral: bool = False,
    channel_id: str = "C_APPROVERS",
    message_ts: str = "1700000000.000100",
    trigger_id: str | None = None,
    block_id: str = "b",
    team_id: str = "T0001",
    message_blocks: list[dict[str, Any]] | None = None,
    message_text: str = "",
    button_text: str = "Button",
    api_app_id: str = API_APP_ID,
    bot_id: str = "B0BOT",
    bot_user_id: str = "U0BOT",
) -> str:
    """A ``block_actions`` interaction (a button click), as ``payload=<json>``.

    ``ephemeral=True`` is a click on an ephemeral message: ``container.is_ephemeral`` is true and
    there is NO ``message`` key. Otherwise the payload carries ``message`` (ts, text, blocks; the
    blocks default to one actions block holding the clicked button) and ``container.is_ephemeral``
    is false, as Slack sends it. ``response_url`` is included when given.
    """
    action = {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": button_text, "emoji": True},
        "value": value,
        "action_ts": _action_ts(),
    }
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": ephemeral,
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower().removeprefix("c_")},
    }
    if not ephemeral:
        if message_blocks is None:
            button = {k: v for k, v in action.items() if k not in ("block_id", "action_ts")}
            message_blocks = [{"type": "actions", "block_id": block_id, "elements": [button]}]
        payload["message"] = {
            "type": "message",
            "subtype": "bot_message",
            "text": message_text,
            "ts": message_ts,
            "bot_id": bot_id,
            "user": bot_user_id,
            "app_id": api_app_id,
            "team": team_id,
            "blocks": message_blocks,
        }
    payload["state"] = {"values": {}}
    if response_url is not None:
        payload["response_url"] = response_url
    payload["actions"] = [action]
    return _payload_body(payload)


def home_block_actions_body(
    *,
    action_id: str,
    value: str,
    user_id: str,
    view_id: str = "VHOME0001",
    trigger_id: str | None = None,
    block_id: str = "b",
    team_id: str = "T0001",
    view_blocks: list[dict[str, Any]] | None = None,
    api_app_id: str = API_APP_ID,
    bot_id: str = "B0BOT",
    view_type: str = "home",
) -> str:
    """A button click on the App Home tab (or, with ``view_type="modal"``, in a modal), as
    ``payload=<json>``.

    As Slack sends it: ``container`` is ``{"type": "view", "view_id": …}``, the payload carries
    the ``view`` (type ``home``), and there is NO ``message``, ``channel`` or ``response_url``.
    """
    action = {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": "Button", "emoji": True},
        "value": value,
        "action_ts": _action_ts(),
    }
    view = {
        "id": view_id,
        "team_id": team_id,
        "type": view_type,
        "blocks": view_blocks or [],
        "private_metadata": "",
        "callback_id": "",
        "state": {"values": {}},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "title": {"type": "plain_text", "text": "View Title", "emoji": True},
        "clear_on_close": False,
        "notify_on_close": False,
        "close": None,
        "submit": None,
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": api_app_id,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": bot_id,
    }
    payload = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view_id},
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
        "actions": [action],
    }
    return _payload_body(payload)


def event_callback_body(
    event: dict[str, Any],
    *,
    team_id: str = "T0001",
    api_app_id: str = API_APP_ID,
    event_id: str | None = None,
) -> str:
    """An Events API delivery (JSON, as Slack posts it), e.g. ``{"type": "app_home_opened", …}``."""
    payload = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": {"event_ts": f"{time.time():.6f}", **event},
        "type": "event_callback",
        "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": "U0BOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return json.dumps(payload, separators=(",", ":"))


def _state_value(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value  # a full state element, e.g. {"type": "static_select", "selected_option": …}
    return {"type": "plain_text_input", "value": value}


def view_submission_body(
    *,
    callback_id: str,
    values: dict[str, dict[str, Any]],
    private_metadata: str,
    user_id: str,
    view_id: str = "V1",
    team_id: str = "T0001",
    api_app_id: str = API_APP_ID,
    bot_id: str = "B0BOT",
    trigger_id: str | None = None,
) -> str:
    """A ``view_submission`` interaction, as ``payload=<json>``.

    ``values`` is ``{block_id: {action_id: value}}``; a str (or None for an empty optional input)
    becomes ``{"type": "plain_text_input", "value": value}``, a dict is used as the whole state
    element.
    """
    state = {
        block_id: {action_id: _state_value(v) for action_id, v in actions.items()}
        for block_id, actions in values.items()
    }
    view = {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": [],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": state},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "title": {"type": "plain_text", "text": "Modal", "emoji": True},
        "clear_on_close": False,
        "notify_on_close": False,
        "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
        "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": api_app_id,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": bot_id,
    }
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _payload_body(payload)


async def post_signed(
    client: httpx.AsyncClient,
    body: str,
    secret: str,
    *,
    timestamp: int | None = None,
    path: str = "/slack/events",
) -> httpx.Response:
    """POST ``body`` to ``path`` with Slack's signature headers (as JSON when it is JSON: Events
    API deliveries are)."""
    headers = sign(body, secret, timestamp)
    if body.startswith("{"):
        headers["Content-Type"] = "application/json"
    return await client.post(path, content=body.encode(), headers=headers)


def block_suggestion_body(
    *,
    action_id: str,
    block_id: str,
    value: str,
    user_id: str,
    callback_id: str = "",
    private_metadata: str = "",
    team_id: str = "T0001",
    api_app_id: str = API_APP_ID,
) -> str:
    """A ``block_suggestion`` (options for an external select in a modal), as ``payload=<json>``:
    what the person typed so far is ``value``."""
    payload = {
        "type": "block_suggestion",
        "user": _user(user_id, team_id),
        "container": {"type": "view", "view_id": "V1"},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "view": {
            "id": "V1",
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "blocks": [],
            "state": {"values": {}},
        },
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _payload_body(payload)
