"""member_joined_channel, member_left_channel: the channel's members are read again next time."""

from __future__ import annotations

from typing import Any

from bot.slack.listeners.deps import Listener, ListenerDeps


def listener(deps: ListenerDeps) -> Listener:
    async def membership_changed(event: dict[str, Any]) -> None:
        channel = event.get("channel")
        if isinstance(channel, str) and channel:
            deps.people.forget_members(channel)

    return membership_changed
