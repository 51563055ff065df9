"""The App Home tab: the person's own requests and, for approvers, what waits for a decision.

The view is rendered from the store each time the tab opens (and after a click made on it), so it
holds no state of its own; its Approve, Deny and Cancel buttons are the same actions as on the
cards and messages, decided by the same listeners.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.ui.home import HOME_MINE_LIMIT, HOME_WAITING_LIMIT, home_view
from bot.slack.ui.kit import Message
from bot.workflow.models import DirectoryEntry, ProvisioningRequest
from bot.workflow.requests import Requests

log = logging.getLogger(__name__)

# The Home tab says whether the viewer has an account when the directory says so quickly; else
# it offers the button, whose click looks again.
OWN_ACCOUNT_SECONDS = 1.5

# Permalinks of the cards of some requests, by request id (the notifier's card_permalinks).
CardLinks = Callable[[Iterable[ProvisioningRequest]], Awaitable[Mapping[str, str | None]]]


class HomeTab:
    def __init__(
        self, *, requests: Requests, client: AsyncWebClient, card_links: CardLinks
    ) -> None:
        self.requests = requests
        self.client = client
        self.card_links = card_links

    async def publish(self, user_id: str, *, notice: Message | None = None) -> bool:
        """Render and publish `user_id`'s Home tab, with `notice` at the top; False when Slack
        did not take it."""
        content, own = await asyncio.gather(
            self.requests.home(
                user_id, mine_limit=HOME_MINE_LIMIT, waiting_limit=HOME_WAITING_LIMIT
            ),
            self._own_account(user_id),
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
            permalinks=await self.card_links(listed),
            notice=notice,
            own_account=own,
        )
        try:
            await self.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            log.warning("views.publish failed: %s", exc.response.get("error"))
            return False
        except Exception as exc:  # connection errors, timeouts: the caller falls back to a DM
            log.warning("views.publish failed: %s", type(exc).__name__)
            return False
        return True

    async def _own_account(self, user_id: str) -> DirectoryEntry | None:
        """The viewer's Connect account, when the directory says quickly that they have one."""
        try:
            own = await asyncio.wait_for(self.requests.own_entry(user_id), OWN_ACCOUNT_SECONDS)
        except TimeoutError:
            return None
        return own.entry if own.entry is not None and own.entry.has_account else None
