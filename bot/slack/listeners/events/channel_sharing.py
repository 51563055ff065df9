"""channel_shared, channel_unshared: the approver channel is checked again (a channel shared with
another organisation is reported). Nothing else here calls Slack."""

from __future__ import annotations

from typing import Any

from bot.slack.listeners.deps import Listener, ListenerDeps


def listener(deps: ListenerDeps) -> Listener:
    async def sharing_changed(event: dict[str, Any]) -> None:
        if event.get("channel") == deps.approver_channel:
            deps.supervisor.spawn(
                deps.people.recheck_approver_channel(), name="approver-channel-check"
            )

    return sharing_changed
