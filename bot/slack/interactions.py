"""What a click or a form submission says, read from Slack's payload the same way everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Click:
    value: str
    user_id: str
    response_url: str | None
    channel: str | None
    from_home: bool = False


def read_click(body: dict[str, Any]) -> Click:
    """What a block_actions payload says, reading only what every kind of click has.

    Clicks on ephemeral messages carry `container.is_ephemeral` and no `message`; clicks on the
    Home tab carry `view` and no `message`, `channel` or `response_url`.
    """
    action = (body.get("actions") or [{}])[0]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    return Click(
        value=str(action.get("value") or ""),
        user_id=body["user"]["id"],
        response_url=body.get("response_url"),
        channel=channel,
        from_home=(body.get("view") or {}).get("type") == "home",
    )


def view_input(view: dict[str, Any], block_id: str, action_id: str) -> str:
    """The text a person typed into a modal's input."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    return str((values.get(action_id) or {}).get("value") or "")


def view_selected(view: dict[str, Any], block_id: str, action_id: str) -> str | None:
    """The value of the option a person chose in a modal's select (None: no such select, or
    nothing chosen)."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    option = (values.get(action_id) or {}).get("selected_option") or {}
    value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) else None


def view_selected_many(view: dict[str, Any], block_id: str, action_id: str) -> list[str]:
    """The values of the options a person chose in a modal's multi-select (none: [])."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    options = (values.get(action_id) or {}).get("selected_options") or []
    if not isinstance(options, list):
        return []
    chosen = (option.get("value") for option in options if isinstance(option, dict))
    return [value for value in chosen if isinstance(value, str)]
