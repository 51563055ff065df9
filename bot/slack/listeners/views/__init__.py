"""Modal submissions: the justification for a request, the role and justification for a role
change, the role an approval grants, the reason for a denial, and forms this version of the bot
did not make."""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.deps import ListenerDeps
from bot.slack.listeners.views import (
    approve_role,
    batch_request,
    deny_all,
    deny_reason,
    group_request,
    join_groups,
    justification,
    lock_request,
    role_change,
    unknown,
)
from bot.slack.ui import ids


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    app.view(ids.VIEW_JUSTIFICATION)(justification.listener(deps))
    app.view(ids.VIEW_DENY_REASON)(deny_reason.listener(deps))
    app.view(ids.VIEW_ROLE_CHANGE)(role_change.listener(deps))
    app.view(ids.VIEW_APPROVE)(approve_role.listener(deps))
    app.view(ids.VIEW_BATCH_REQUEST)(batch_request.listener(deps))
    app.view(ids.VIEW_DENY_ALL)(deny_all.listener(deps))
    app.view(ids.VIEW_LOCK_REQUEST)(lock_request.listener(deps))
    app.view(ids.VIEW_GROUP_REQUEST)(group_request.listener(deps))
    app.view(ids.VIEW_JOIN_GROUPS)(join_groups.listener(deps))
    # Registered last: it matches any callback_id.
    app.view(re.compile(r".*"))(unknown.listener(deps))
