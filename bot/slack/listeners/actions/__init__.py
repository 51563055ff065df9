"""Button clicks: Request account and Change role (on the requester's ephemeral results), Approve
and Deny (on the approval card and the approvers' Home tab), Cancel (under the requester's
confirmation, in `/connect-user status` and on their Home tab), and anything else.

A click on the Home tab carries `view` and neither `message`, `channel` nor `response_url`: its
answer is shown at the top of the refreshed Home tab instead (a DM if that fails).
"""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.actions import (
    approve,
    cancel,
    change_role,
    close,
    deny,
    join_groups,
    options,
    request_account,
    request_group,
    retry,
    unknown,
)
from bot.slack.listeners.deps import ListenerDeps
from bot.slack.ui import ids


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    app.action(ids.ACTION_REQUEST_ACCOUNT)(request_account.listener(deps))
    app.action(ids.ACTION_APPROVE)(approve.listener(deps))
    app.action(ids.ACTION_APPROVE_WITH_NOTE)(approve.listener(deps, with_note=True))
    app.action(ids.ACTION_DENY)(deny.listener(deps))
    app.action(ids.ACTION_CANCEL)(cancel.listener(deps))
    app.action(ids.ACTION_CHANGE_ROLE)(change_role.listener(deps))
    app.action(ids.ACTION_RETRY)(retry.listener(deps))
    app.action(ids.ACTION_CLOSE)(close.listener(deps))
    app.action(ids.ACTION_REQUEST_GROUP)(request_group.listener(deps))
    app.action(ids.ACTION_JOIN_GROUPS)(join_groups.listener(deps))
    # Registered last: Bolt runs the first listener that matches, and this one matches anything.
    app.action(re.compile(r".*"))(unknown.listener(deps))
    app.options(re.compile(r".*"))(options.listener(deps))
