"""Replacing a modal that opened at once (a trigger lasts 3 seconds) with what took longer to
read: the one way it is done, and told when it cannot be."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.home import HomeTab
from bot.slack.interactions import Click
from bot.slack.ui.kit import View
from bot.slack.ui.refusals import refusal_message

log = logging.getLogger(__name__)

SLACK_ERRORS = (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError)


def slack_error(exc: Exception) -> str:
    """Slack's error code, or the kind of failure when Slack did not answer."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return type(exc).__name__


async def replace_modal(
    client: AsyncWebClient,
    view_id: str,
    view: View,
    *,
    click: Click,
    home: HomeTab,
    what: str,
    not_opened: str,
) -> None:
    """Show `view` in the modal `view_id`. When Slack refuses, the modal would say "Reading…"
    forever: the clicker is told `not_opened` where they clicked — unless they closed the
    modal meanwhile (not_found), when there is nobody to tell."""
    try:
        await client.views_update(view_id=view_id, view=view)
    except SLACK_ERRORS as exc:
        error = slack_error(exc)
        log.warning("views.update failed for %s: %s", what, error)
        if error == "not_found":
            return
        await respond.to_clicker(client, click, refusal_message(not_opened), home=home)
