"""Any other button: from an older version of the bot, or a forged payload. Answer, change
nothing."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.refusals import outdated_button_message


def listener(deps: ListenerDeps) -> Listener:
    async def unknown_action(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await respond.via_response_url(read_click(body).response_url, outdated_button_message())

    return unknown_action
