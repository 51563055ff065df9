"""The App Home tab: the person's own requests and, for approvers, what waits for a decision.

The view is rendered from the store each time the tab opens (and after a click made on it), so it
holds no state of its own; its Approve, Deny and Cancel buttons are the same actions as on the
cards and messages, decided by the same handlers.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack.listeners import ListenerDeps
from bot.slack.ui.home import HOME_MINE_LIMIT, HOME_WAITING_LIMIT, home_view

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        # Bolt acknowledges events itself. The Messages tab raises the same event; only the Home
        # tab shows a view. A redelivered event just publishes the same view again.
        user_id = event.get("user")
        if event.get("tab") != "home" or not isinstance(user_id, str) or not user_id:
            return
        deps.supervisor.spawn(publish_home(deps, user_id), name="home")


async def publish_home(
    deps: ListenerDeps, user_id: str, *, notice: dict[str, Any] | None = None
) -> bool:
    """Render and publish `user_id`'s Home tab; False when Slack did not take it."""
    content = await deps.requests.home(
        user_id, mine_limit=HOME_MINE_LIMIT, waiting_limit=HOME_WAITING_LIMIT
    )
    waiting = content.waiting
    listed = [*content.mine.requests, *(waiting.requests if waiting else ())]
    view = home_view(
        viewer_id=user_id,
        mine=content.mine.requests,
        mine_total=content.mine.total,
        waiting=waiting.requests if waiting else None,
        waiting_total=waiting.total if waiting else 0,
        waiting_refusal=content.waiting_refusal,
        permalinks=await deps.notifier.card_permalinks(listed),
        notice=notice,
    )
    try:
        await deps.notifier.client.views_publish(user_id=user_id, view=view)
    except SlackApiError as exc:
        log.warning("views.publish failed: %s", exc.response.get("error"))
        return False
    except Exception as exc:  # connection errors, timeouts: the caller falls back to a DM
        log.warning("views.publish failed: %s", type(exc).__name__)
        return False
    return True
