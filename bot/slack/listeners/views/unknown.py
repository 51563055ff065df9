"""Any other form: from an older version of the bot, or forged. Say so in the form itself."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck

from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.modals import outdated_form_view


def listener(deps: ListenerDeps) -> Listener:
    async def unknown_view(ack: AsyncAck) -> None:
        await ack(response_action="update", view=outdated_form_view())

    return unknown_view
