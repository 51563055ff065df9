"""Join groups, on an account in the requester's search results: open the form that asks which
Connect groups and why.

The button carries the account's GUID only. The trigger_id lasts 3 seconds and Connect may be
slower than that, so a modal saying the account is being read opens at once, and is replaced by
the form (or by why there is none) once the account has been read from Connect."""

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
from bot.slack.ui.groups import join_form_problem_view, join_groups_loading_view, join_groups_modal
from bot.slack.ui.kit import View
from bot.slack.ui.modals import refusal_view
from bot.slack.ui.refusals import outdated_button_message, refusal_message
from bot.slack.ui.values import encode_role_change_metadata, is_account_guid
from bot.workflow.outcomes import JoinForm

log = logging.getLogger(__name__)

FORM_NOT_OPENED = "Slack didn't let me open the groups form in time. Please press the button again."
FAILURE = (
    "Something went wrong on my side, so the groups form did not open. "
    "Please press the button again in a moment."
)
_SLACK_ERRORS = (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError)


def listener(deps: ListenerDeps) -> Listener:
    async def join_groups(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        try:
            await open_join_form(deps, click, body.get("trigger_id"), client)
        except Exception:
            log.exception("a Join groups click failed")
            await respond.to_clicker(deps.client, click, refusal_message(FAILURE), home=deps.home)

    return join_groups


async def open_join_form(
    deps: ListenerDeps, click: Click, trigger_id: str | None, client: AsyncWebClient
) -> None:
    if not is_account_guid(click.value):
        await respond.via_response_url(click.response_url, outdated_button_message())
        return
    view_id = ""
    if trigger_id:
        try:
            opened = await client.views_open(trigger_id=trigger_id, view=join_groups_loading_view())
            view_id = str((opened.get("view") or {}).get("id") or "")
        except _SLACK_ERRORS as exc:
            log.warning("views.open failed for Join groups: %s", type(exc).__name__)
    if not view_id:
        await respond.to_clicker(
            deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
        )
        return
    deps.after_click(
        click, fill_join_form(deps, click, view_id, client), name="join-form", failure=FAILURE
    )


async def fill_join_form(
    deps: ListenerDeps, click: Click, view_id: str, client: AsyncWebClient
) -> None:
    view: View
    # Only someone who may search sees an account's details (anyone can send a click).
    refused = await deps.people.search_refusal(click.user_id)
    if refused is not None:
        view = refusal_view("Join groups", refused)
    else:
        outcome = await deps.requests.join_form(click.value)
        if isinstance(outcome, JoinForm):
            metadata = encode_role_change_metadata(
                click.value, outcome.account.username, click.response_url
            )
            view = join_groups_modal(account=outcome.account, private_metadata=metadata)
        else:
            view = join_form_problem_view(outcome)
    try:
        await client.views_update(view_id=view_id, view=view)
    except _SLACK_ERRORS as exc:
        log.warning("views.update failed for Join groups: %s", type(exc).__name__)
        await respond.to_clicker(
            deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
        )
