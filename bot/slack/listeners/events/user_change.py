"""user_change: a member's profile changed (deactivation included); it is read again next time."""

from __future__ import annotations

from typing import Any

from bot.slack.listeners.deps import Listener, ListenerDeps


def listener(deps: ListenerDeps) -> Listener:
    async def user_changed(event: dict[str, Any]) -> None:
        # Fires for every profile edit of every member: dropping one entry is all it costs.
        user = event.get("user")
        user_id = user.get("id") if isinstance(user, dict) else None
        if isinstance(user_id, str) and user_id:
            deps.people.forget_profile(user_id)

    return user_changed
