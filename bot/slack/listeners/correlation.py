"""A Bolt middleware that names every incoming Slack request for the logs.

Clicks and submissions about a provisioning request carry its id; a Request-account click carries
the id of the search that showed the button; anything else gets a fresh id.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.logs import request_id_var
from bot.slack.ui import ids
from bot.slack.ui.values import (
    decode_approval_metadata,
    decode_justification_metadata,
    decode_person_value,
    is_request_id,
)


def correlation_id(body: dict[str, Any]) -> str:
    action = (body.get("actions") or [{}])[0]
    value = str(action.get("value") or "")
    decides = (ids.ACTION_APPROVE, ids.ACTION_DENY, ids.ACTION_CANCEL, ids.ACTION_RETRY)
    if action.get("action_id") in decides and is_request_id(value):
        return value
    if action.get("action_id") == ids.ACTION_REQUEST_ACCOUNT:
        person = decode_person_value(value)
        if person and person.correlation_id:
            return person.correlation_id
    view = body.get("view") or {}
    metadata = str(view.get("private_metadata") or "")
    if view.get("callback_id") == ids.VIEW_DENY_REASON and is_request_id(metadata):
        return metadata
    if view.get("callback_id") == ids.VIEW_APPROVE:
        form = decode_approval_metadata(metadata)
        if form is not None:
            return form.request_id
    if view.get("callback_id") == ids.VIEW_JUSTIFICATION:
        person, _ = decode_justification_metadata(metadata)
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
