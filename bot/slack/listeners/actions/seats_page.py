"""Previous / Next under the licensed accounts nobody uses (`/connect-user seats`): show that
page in place of the one clicked, after checking again that the clicker is an approver."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.refusals import outdated_button_message
from bot.slack.ui.seats import seats_message, seats_refusal
from bot.workflow.outcomes import Refused

FAILURE = "Something went wrong on my side. Please run /connect-user seats again."
MAX_PAGE = 10_000


def listener(deps: ListenerDeps) -> Listener:
    async def seats_page(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        deps.after_click(click, show_page(deps, click), name="seats-page", failure=FAILURE)

    return seats_page


async def show_page(deps: ListenerDeps, click: Click) -> None:
    value = click.value
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_PAGE):
        await respond.to_clicker(deps.client, click, outdated_button_message(), home=deps.home)
        return
    outcome = await deps.seat_report.for_approver(click.user_id, page=int(value))
    if isinstance(outcome, Refused):
        message = seats_refusal(outcome.reason, approver_channel=deps.approver_channel)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    await respond.to_clicker(
        deps.client, click, seats_message(outcome), home=deps.home, replace=True
    )
