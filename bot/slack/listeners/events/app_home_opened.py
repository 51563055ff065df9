"""The Home tab was opened: publish it, rendered from the store (bot/slack/home.py)."""

from __future__ import annotations

from typing import Any

from bot.slack.listeners.deps import Listener, ListenerDeps


def listener(deps: ListenerDeps) -> Listener:
    async def home_opened(event: dict[str, Any]) -> None:
        # The Messages tab raises the same event; only the Home tab shows a view.
        user_id = event.get("user")
        if event.get("tab") != "home" or not isinstance(user_id, str) or not user_id:
            return
        deps.supervisor.spawn(deps.home.publish(user_id), name="home")

    return home_opened
