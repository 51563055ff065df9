"""Counting the Slack Web API's errors and 429s by method, where every call passes.

slack_sdk shows each answer (and each failure to get one) to the client's retry handlers, and Bolt
copies them onto the client it makes for every request: a handler that only looks, first in the
list, sees every call the bot makes, its listeners' included, without wrapping any of them.
"""

from __future__ import annotations

import re

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.workflow.ports import Metrics

# `chat.postMessage`, `users.profile.get`, `oauth.v2.access`: a lower-case family, then dotted
# parts (bounded, so a label never holds a long value).
_SLACK_METHOD = re.compile(r"[a-z]{1,32}(\.[A-Za-z0-9]{1,40}){1,4}")


class SlackCallCounter(AsyncRetryHandler):
    """Never asks for a retry; counts what it is shown."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self._metrics = metrics

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = api_method(request.url)
        if error is not None:
            # No answer read (a timeout, a dropped connection, a body that is not JSON).
            self._metrics.slack_error(method, type(error).__name__)
        elif response is not None:
            if response.status_code == 429:
                self._metrics.slack_rate_limited(method)
            body = response.body
            if isinstance(body, dict) and body.get("ok") is False:
                self._metrics.slack_error(method, str(body.get("error") or response.status_code))
            elif response.status_code >= 400 and not isinstance(body, dict):
                self._metrics.slack_error(method, str(response.status_code))
        return False


def api_method(url: str) -> str:
    """`https://slack.com/api/chat.postMessage` → `chat.postMessage`; "other" for anything not
    shaped like a Slack method name, so an odd URL's last segment never becomes a label."""
    last = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return last if _SLACK_METHOD.fullmatch(last) else "other"


def count_calls(client: AsyncWebClient, metrics: Metrics) -> None:
    """Make `client` (and the clients Bolt copies from it) count its errors into `metrics`."""
    # First: slack_sdk stops asking its handlers at the first that retries.
    client.retry_handlers.insert(0, SlackCallCounter(metrics))
