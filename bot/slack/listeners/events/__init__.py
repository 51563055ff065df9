"""Events: the Home tab was opened, a member was deactivated or reactivated (user_change), and
the events that make an answer about who may decide out of date (drop it now rather than wait
for its maximum age: events can be lost; the maximum age holds regardless).

Bolt acknowledges events itself. Redelivered events only publish the same Home tab or drop an
answer again; a deactivation redelivered (or received by every replica) finds the lock question
already filed for that account (one open request per username, kept by the database).
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.deps import ListenerDeps
from bot.slack.listeners.events import (
    app_home_opened,
    channel_membership,
    channel_sharing,
    user_change,
    usergroup_membership,
)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    app.event("app_home_opened")(app_home_opened.listener(deps))
    membership_changed = channel_membership.listener(deps)
    app.event("member_joined_channel")(membership_changed)
    app.event("member_left_channel")(membership_changed)
    app.event("user_change")(user_change.listener(deps))
    app.event("subteam_members_changed")(usergroup_membership.listener(deps))
    sharing_changed = channel_sharing.listener(deps)
    app.event("channel_shared")(sharing_changed)
    app.event("channel_unshared")(sharing_changed)
