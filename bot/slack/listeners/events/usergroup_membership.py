"""subteam_members_changed: a user group's members are read again next time (it may be the
approvers' group)."""

from __future__ import annotations

from typing import Any

from bot.slack.listeners.deps import Listener, ListenerDeps


def listener(deps: ListenerDeps) -> Listener:
    async def usergroup_changed(event: dict[str, Any]) -> None:
        usergroup = event.get("subteam_id")
        if isinstance(usergroup, str) and usergroup:
            deps.people.forget_usergroup(usergroup)

    return usergroup_changed
