"""The last line: an exception before `ack()` still gets a logged, answered request."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)


async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
    log.error("listener failed: %s", type(error).__name__, exc_info=error)
    if body.get("type") == "view_submission":
        return BoltResponse(status=200, body="")
    # Slack shows its own "failed" note for a non-200; the text reaches the person for commands.
    return BoltResponse(
        status=200,
        body="Sorry, something went wrong on my side. Please try again in a moment.",
    )


def register(app: AsyncApp) -> None:
    app.error(on_error)
