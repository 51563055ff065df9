"""The one way to tell a person something privately, named by the channel it goes through.

- `via_response_url`: ephemeral, through an interaction's response_url (Slack allows 5 posts
  within 30 minutes; `replace` swaps the message that was clicked for this one).
- `ephemeral`: chat.postEphemeral in a channel the person is in.
- `direct_message`: a DM from the bot (conversations.open, then chat.postMessage).
- `privately`: response_url, else ephemeral in the channel, else a DM, so the person is never
  left in silence; `on_home_tab`: at the top of their refreshed Home tab, else a DM;
  `to_clicker`: wherever a click was made.

A response_url is a credential for the message it belongs to: it is never logged.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.home import HomeTab
from bot.slack.interactions import Click
from bot.slack.ui.kit import Message

log = logging.getLogger(__name__)

RESPONSE_URL_TIMEOUT_SECONDS = 10


class NoDirectChannel(Exception):
    """conversations.open answered without a channel."""


async def via_response_url(
    url: str | None,
    message: Message,
    *,
    replace: bool = False,
    session: aiohttp.ClientSession | None = None,
) -> bool:
    """Show `message` only to the person behind the interaction; False when there is no URL or
    Slack did not take it (older than 30 minutes, used 5 times, …): callers decide what then."""
    if not url:
        return False
    payload = {**message, "response_type": "ephemeral", "replace_original": replace}
    try:
        if session is not None and session.closed:
            session = None
        webhook = AsyncWebhookClient(url, timeout=RESPONSE_URL_TIMEOUT_SECONDS, session=session)
        response = await webhook.send_dict(payload)
    except Exception as exc:
        log.warning("posting to a response_url failed: %s", type(exc).__name__)
        return False
    if response.status_code != 200:
        log.warning("a response_url answered %s", response.status_code)
        return False
    return True


async def ephemeral(client: AsyncWebClient, channel: str, user_id: str, message: Message) -> bool:
    """Show `message` to `user_id` only, in `channel`; False when Slack refused it."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user_id, **message)
    except SlackApiError as exc:
        log.warning("chat.postEphemeral failed: %s", exc.response.get("error"))
        return False
    except Exception as exc:  # Slack unreachable: the next channel of delivery may still work
        log.warning("chat.postEphemeral failed: %s", type(exc).__name__)
        return False
    return True


async def direct_message(
    client: AsyncWebClient, user_id: str, message: Message, *, unfurl: bool = True
) -> None:
    """Send `message` to `user_id` as a DM from the bot. Raises SlackApiError (and
    NoDirectChannel) for the caller to retry or report; `unfurl=False` asks Slack for no link
    or media previews."""
    opened = await client.conversations_open(users=user_id)
    channel = (opened.get("channel") or {}).get("id")
    if not channel:
        raise NoDirectChannel
    if unfurl:
        await client.chat_postMessage(channel=channel, **message)
    else:
        await client.chat_postMessage(
            channel=channel, unfurl_links=False, unfurl_media=False, **message
        )


async def privately(
    client: AsyncWebClient,
    *,
    user_id: str,
    message: Message,
    response_url: str | None = None,
    channel: str | None = None,
    replace: bool = False,
) -> None:
    """Through the response_url if there is one (modal submissions have none) and Slack takes
    it; else ephemeral in `channel`; else a DM. A DM that fails too is logged."""
    if await via_response_url(response_url, message, replace=replace, session=client.session):
        return
    if channel and await ephemeral(client, channel, user_id, message):
        return
    try:
        await direct_message(client, user_id, message)
    except SlackApiError as exc:
        log.error("could not tell %s anything: %s", user_id, exc.response.get("error"))
    except Exception as exc:  # the last channel: nothing is left to try, and nobody to tell
        log.error("could not tell %s anything: %s", user_id, type(exc).__name__)


async def on_home_tab(
    client: AsyncWebClient, home: HomeTab, user_id: str, message: Message
) -> None:
    """At the top of the person's refreshed Home tab, else a DM (a click on the Home tab has no
    response_url, and chat.postEphemeral needs a channel it does not have)."""
    if await home.publish(user_id, notice=message):
        return
    await privately(client, user_id=user_id, message=message)


async def to_clicker(
    client: AsyncWebClient,
    click: Click,
    message: Message,
    *,
    home: HomeTab,
    replace: bool = False,
) -> None:
    """Tell the person who clicked, and only them, wherever they clicked: on their Home tab for
    a click there, else as `privately` does (`replace` swaps the clicked message for this one)."""
    if click.from_home:
        await on_home_tab(client, home, click.user_id, message)
        return
    await privately(
        client,
        user_id=click.user_id,
        message=message,
        response_url=click.response_url,
        channel=click.channel,
        replace=replace,
    )
