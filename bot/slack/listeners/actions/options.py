"""Options for an external select: the bot offers none, so a block_suggestion (forged, or from a
future version's form) gets an empty list rather than Bolt's 404 "unhandled request"."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck

from bot.slack.listeners.deps import Listener, ListenerDeps


def listener(deps: ListenerDeps) -> Listener:
    async def no_options(ack: AsyncAck) -> None:
        await ack(options=[])

    return no_options
