"""A Bolt middleware that names every incoming Slack request for the logs.

Clicks and submissions about a provisioning request carry its id; a Request-account click carries
the id of the search that showed the button; anything else gets a fresh id.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.logs import request_id_var
from bot.slack import blocks

_ID = re.compile(r"^[0-9a-f]{8,32}$")


def correlation_id(body: dict[str, Any]) -> str:
    action = (body.get("actions") or [{}])[0]
    value = str(action.get("value") or "")
    decides = (blocks.ACTION_APPROVE, blocks.ACTION_DENY, blocks.ACTION_CANCEL)
    if action.get("action_id") in decides and _ID.match(value):
        return value
    if action.get("action_id") == blocks.ACTION_REQUEST_ACCOUNT:
        person = blocks.decode_person_value(value)
        if person and person.correlation_id:
            return person.correlation_id
    view = body.get("view") or {}
    metadata = str(view.get("private_metadata") or "")
    if view.get("callback_id") == blocks.VIEW_DENY_REASON and _ID.match(metadata):
        return metadata
    if view.get("callback_id") == blocks.VIEW_JUSTIFICATION:
        try:
            person = blocks.decode_person_value(json.loads(metadata).get("v"))
        except (ValueError, AttributeError):
            person = None
        if person and person.correlation_id:
            return person.correlation_id
    return secrets.token_hex(8)


async def bind_correlation_id(
    req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
) -> BoltResponse:
    body = req.body if isinstance(req.body, dict) else {}
    # Not reset afterwards: Bolt runs middlewares one after another and the listener only after
    # the last has returned. Each incoming request is handled in a task (and context) of its own,
    # so the value cannot leak into another request.
    request_id_var.set(correlation_id(body))
    return await next()
