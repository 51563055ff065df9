"""`/connect-user`: search the directory, or show how to use the command."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.logs import request_id_var
from bot.slack import blocks
from bot.slack.command import Help, Search, parse_command
from bot.slack.listeners import ListenerDeps
from bot.slack.listeners.replies import reply

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    @app.command(deps.command)
    async def connect_user(ack: AsyncAck, command: dict[str, Any]) -> None:
        # Ack first and with nothing: Slack allows 3 s and Connect may be slower than that.
        await ack()
        response_url = command.get("response_url")

        async def report_failure(_: BaseException) -> None:
            await reply(response_url, blocks.search_failure_message("internal", ""))

        deps.supervisor.spawn(
            run_command(deps, command), name="slash-command", on_error=report_failure
        )


async def run_command(deps: ListenerDeps, command: dict[str, Any]) -> None:
    response_url = command.get("response_url")
    parsed = parse_command(command.get("text") or "")
    if isinstance(parsed, Help):
        await reply(response_url, blocks.usage_message(parsed.reason))
        return
    assert isinstance(parsed, Search)
    refusal = await deps.people.search_refusal(command["user_id"])
    if refusal is not None:
        await reply(response_url, blocks.refusal_message(refusal))
        return
    outcome = await deps.service.search(parsed.prefix)
    if outcome.problem is not None:
        message = blocks.search_failure_message(outcome.problem.value, parsed.prefix)
    elif outcome.result is not None and outcome.result.results:
        message = blocks.search_results_message(
            parsed.prefix,
            outcome.result,
            connect_url=deps.connect_url,
            correlation_id=request_id_var.get(),
        )
    else:
        message = blocks.no_results_message(parsed.prefix)
    if not await reply(response_url, message):
        log.warning("search results could not be delivered to the response_url")
