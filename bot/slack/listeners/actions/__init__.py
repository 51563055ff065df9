"""Button clicks: Request account, Change role and Request unlock (on the requester's ephemeral
results; Request unlock also on the Home tab), Lock (an unused account in the seats list), Approve
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
    decide_all,
    deny,
    join_groups,
    keep,
    options,
    request_account,
    request_batch,
    request_group,
    request_lock,
    request_mine,
    retry,
    seats_page,
    unknown,
)
from bot.slack.listeners.deps import ListenerDeps
from bot.slack.ui import ids


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    app.action(ids.ACTION_REQUEST_ACCOUNT)(request_account.listener(deps))
    app.action(ids.ACTION_REQUEST_MINE)(request_mine.listener(deps))
    app.action(ids.ACTION_REQUEST_BATCH)(request_batch.listener(deps))
    app.action(ids.ACTION_APPROVE_ALL)(decide_all.approve_all(deps))
    app.action(ids.ACTION_DENY_ALL)(decide_all.deny_all(deps))
    app.action(ids.ACTION_APPROVE)(approve.listener(deps))
    app.action(ids.ACTION_APPROVE_WITH_NOTE)(approve.listener(deps, with_note=True))
    app.action(ids.ACTION_DENY)(deny.listener(deps))
    app.action(ids.ACTION_CANCEL)(cancel.listener(deps))
    app.action(ids.ACTION_CHANGE_ROLE)(change_role.listener(deps))
    app.action(ids.ACTION_RETRY)(retry.listener(deps))
    app.action(ids.ACTION_CLOSE)(close.listener(deps))
    app.action(ids.ACTION_KEEP)(keep.listener(deps))
    app.action(ids.ACTION_REQUEST_UNLOCK)(request_lock.listener(deps, lock=False))
    app.action(ids.ACTION_REQUEST_LOCK)(request_lock.listener(deps, lock=True))
    page = seats_page.listener(deps)
    app.action(ids.ACTION_SEATS_PAGE)(page)
    app.action(ids.ACTION_SEATS_NEXT_PAGE)(page)
    app.action(ids.ACTION_REQUEST_GROUP)(request_group.listener(deps))
    app.action(ids.ACTION_JOIN_GROUPS)(join_groups.listener(deps))
    # Registered last: Bolt runs the first listener that matches, and this one matches anything.
    app.action(re.compile(r".*"))(unknown.listener(deps))
    app.options(re.compile(r".*"))(options.listener(deps))
