"""Events that make an answer about who may decide out of date: drop it now rather than wait for
its maximum age (events can be lost; the maximum age holds regardless).

Bolt acknowledges events itself. Redelivered events only drop an answer again. Nothing here calls
Slack except a re-check of the approver channel when its sharing changed.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import ListenerDeps


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    async def membership_changed(event: dict[str, Any]) -> None:
        channel = event.get("channel")
        if isinstance(channel, str) and channel:
            deps.people.forget_members(channel)

    async def user_changed(event: dict[str, Any]) -> None:
        # Fires for every profile edit of every member: dropping one entry is all it costs.
        user = event.get("user")
        user_id = user.get("id") if isinstance(user, dict) else None
        if isinstance(user_id, str) and user_id:
            deps.people.forget_profile(user_id)

    async def sharing_changed(event: dict[str, Any]) -> None:
        if event.get("channel") == deps.approver_channel:
            deps.supervisor.spawn(
                deps.people.recheck_approver_channel(), name="approver-channel-check"
            )

    app.event("member_joined_channel")(membership_changed)
    app.event("member_left_channel")(membership_changed)
    app.event("user_change")(user_changed)
    app.event("channel_shared")(sharing_changed)
    app.event("channel_unshared")(sharing_changed)
