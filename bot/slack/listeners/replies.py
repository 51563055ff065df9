"""Ephemeral answers to the person who clicked or typed, through the interaction's response_url."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import post_to_response_url

log = logging.getLogger(__name__)


async def reply(
    response_url: str | None,
    message: dict[str, Any],
    *,
    replace: bool = False,
    session: aiohttp.ClientSession | None = None,
) -> bool:
    """Show `message` only to the person behind the interaction. False if Slack refused it."""
    if not response_url:
        return False
    payload = {**message, "response_type": "ephemeral", "replace_original": replace}
    return await post_to_response_url(response_url, payload, session=session)


async def reply_or_ephemeral(
    client: AsyncWebClient,
    *,
    response_url: str | None,
    channel: str | None,
    user_id: str,
    message: dict[str, Any],
) -> None:
    """Try the response_url; if there is none (modal submissions) or it expired, fall back to an
    ephemeral message in the channel, then to a DM, so the person is never left in silence."""
    if await reply(response_url, message, session=client.session):
        return
    if channel:
        try:
            await client.chat_postEphemeral(channel=channel, user=user_id, **message)
            return
        except SlackApiError as exc:
            log.warning("chat.postEphemeral failed: %s", exc.response.get("error"))
    try:
        opened = await client.conversations_open(users=user_id)
        await client.chat_postMessage(channel=opened["channel"]["id"], **message)
    except SlackApiError as exc:
        log.error("could not tell %s anything: %s", user_id, exc.response.get("error"))
