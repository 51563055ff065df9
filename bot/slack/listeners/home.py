"""The App Home tab: the person's own requests and, for approvers, what waits for a decision.

The view is rendered from the store each time the tab opens (and after a click made on it), so it
holds no state of its own; its Approve, Deny and Cancel buttons are the same actions as on the
cards and messages, decided by the same handlers.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import ListenerDeps


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        # Bolt acknowledges events itself. The Messages tab raises the same event; only the Home
        # tab shows a view. A redelivered event just publishes the same view again.
        user_id = event.get("user")
        if event.get("tab") != "home" or not isinstance(user_id, str) or not user_id:
            return
        deps.supervisor.spawn(deps.home.publish(user_id), name="home")
