"""Cancel, under the requester's confirmation, in `/connect-user status` and on their Home tab:
the requester withdraws a request nobody has decided yet."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui.messages import cancelled_message
from bot.slack.ui.refusals import cancel_refusal
from bot.slack.ui.values import is_request_id
from bot.workflow.outcomes import Refusal, Refused

FAILURE = (
    "Something went wrong while cancelling. `/connect-user status` shows the "
    "request's state; press Cancel again if it is still waiting."
)


def listener(deps: ListenerDeps) -> Listener:
    async def cancel(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = read_click(body)
        deps.after_click(click, run_cancel(deps, click), name="cancel", failure=FAILURE)

    return cancel


async def run_cancel(deps: ListenerDeps, click: Click) -> None:
    if not is_request_id(click.value):
        message = cancel_refusal(Refusal.NOT_FOUND)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    outcome = await deps.requests.cancel(click.value, click.user_id)
    if isinstance(outcome, Refused):
        state = outcome.request.state if outcome.request else None
        message = cancel_refusal(outcome.reason, state=state)
        await respond.to_clicker(deps.client, click, message, home=deps.home)
        return
    # The clicked message (confirmation, status list) offered a button that no longer applies.
    message = cancelled_message(outcome.request)
    await respond.to_clicker(deps.client, click, message, home=deps.home, replace=True)
