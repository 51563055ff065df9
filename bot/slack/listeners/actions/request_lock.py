"""Request unlock (a locked account in search results or on the Home tab) and Lock (an account
nobody uses, in `/connect-user seats`): open the form that asks why. The button carries the
account's GUID only; the request is filed, and the account read from Connect, when the form is
submitted (views/lock_request.py)."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.modals import lock_request_modal
from bot.slack.ui.refusals import outdated_button_message, refusal_message
from bot.slack.ui.values import LockTarget, encode_lock_metadata, is_account_guid

log = logging.getLogger(__name__)

FORM_NOT_OPENED = "Slack didn't let me open the form in time. Please press the button again."
FAILURE = (
    "Something went wrong on my side, so the form did not open. "
    "Please press the button again in a moment."
)


def listener(deps: ListenerDeps, *, lock: bool) -> Listener:
    async def request_lock(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        # On the click's own path: the trigger_id is valid for 3 seconds.
        try:
            await open_lock_form(deps, click, body.get("trigger_id"), client, lock=lock)
        except Exception:
            log.exception("a lock or unlock click failed")
            await respond.to_clicker(deps.client, click, refusal_message(FAILURE), home=deps.home)

    return request_lock


async def open_lock_form(
    deps: ListenerDeps,
    click: Click,
    trigger_id: str | None,
    client: AsyncWebClient,
    *,
    lock: bool,
) -> None:
    if not is_account_guid(click.value):
        await respond.to_clicker(deps.client, click, outdated_button_message(), home=deps.home)
        return
    if trigger_id:
        metadata = encode_lock_metadata(LockTarget(click.value, lock), click.response_url)
        try:
            await client.views_open(
                trigger_id=trigger_id,
                view=lock_request_modal(lock=lock, private_metadata=metadata),
            )
            return
        except SlackApiError as exc:
            log.warning("views.open failed for a lock form: %s", exc.response.get("error"))
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("views.open failed for a lock form: %s", type(exc).__name__)
    else:
        log.warning("a lock or unlock click came without a trigger_id")
    await respond.to_clicker(deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home)
