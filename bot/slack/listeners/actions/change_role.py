"""Change role, on an account in the requester's search results: open the form that asks which
role and why.

The button carries the account's GUID only. The trigger_id lasts 3 seconds and Connect may be
slower than that, so a modal saying the account is being read opens at once, and is replaced by
the form (or by why there is none) once the account has been read from Connect."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import Click, read_click
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.modals import SLACK_ERRORS, replace_modal, slack_error
from bot.slack.ui.kit import View
from bot.slack.ui.modals import (
    refusal_view,
    role_change_loading_view,
    role_change_modal,
    role_form_problem_view,
)
from bot.slack.ui.refusals import outdated_button_message, refusal_message
from bot.slack.ui.values import encode_role_change_metadata, is_account_guid
from bot.workflow.outcomes import RoleForm

log = logging.getLogger(__name__)

FORM_NOT_OPENED = (
    "Slack didn't let me open the role change form in time. Please press the button again."
)
FAILURE = (
    "Something went wrong on my side, so the role change form did not open. "
    "Please press the button again in a moment."
)


def listener(deps: ListenerDeps) -> Listener:
    async def change_role(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = read_click(body)
        # On the click's own path, not supervised work: the trigger_id is valid for 3 seconds.
        # After ack() nothing else answers the clicker, so a failure is answered here.
        view = body.get("view") or {}
        # Clicked inside a modal (the one telling someone they have an account already): the
        # form replaces it, as a second modal cannot be opened over it with views.open.
        in_modal = str(view.get("id") or "") if view.get("type") == "modal" else ""
        try:
            await open_role_form(deps, click, body.get("trigger_id"), client, in_modal=in_modal)
        except Exception:
            log.exception("a Change role click failed")
            await respond.to_clicker(deps.client, click, refusal_message(FAILURE), home=deps.home)

    return change_role


async def open_role_form(
    deps: ListenerDeps,
    click: Click,
    trigger_id: str | None,
    client: AsyncWebClient,
    *,
    in_modal: str = "",
) -> None:
    guid = click.value
    if not is_account_guid(guid):
        await respond.via_response_url(click.response_url, outdated_button_message())
        return
    if in_modal:
        try:
            await client.views_update(view_id=in_modal, view=role_change_loading_view())
        except SLACK_ERRORS as exc:
            log.warning("views.update failed for a role change: %s", slack_error(exc))
            return  # the modal they clicked in stays as it was
        deps.after_click(
            click, fill_role_form(deps, click, in_modal, client), name="role-form", failure=FAILURE
        )
        return
    if not trigger_id:
        log.warning("a Change role click came without a trigger_id")
        await respond.to_clicker(
            deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
        )
        return
    try:
        opened = await client.views_open(trigger_id=trigger_id, view=role_change_loading_view())
        view_id = str((opened.get("view") or {}).get("id") or "")
    except SLACK_ERRORS as exc:
        log.warning("views.open failed for a role change: %s", slack_error(exc))
        view_id = ""
    if not view_id:
        await respond.to_clicker(
            deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
        )
        return
    # The rest waits on Connect: supervised work, which a shutdown lets finish.
    deps.after_click(
        click,
        fill_role_form(deps, click, view_id, client),
        name="role-form",
        failure=FAILURE,
    )


async def fill_role_form(
    deps: ListenerDeps, click: Click, view_id: str, client: AsyncWebClient
) -> None:
    """Replace the opened modal with the form for the account as Connect has it now (or with
    why there is none)."""
    guid = click.value
    view: View
    # Only someone who may search the directory sees an account's details (the button's GUID
    # comes from search results, but anyone can send a click).
    refused = await deps.people.search_refusal(click.user_id)
    if refused is not None:
        await _update(deps, click, view_id, refusal_view("Change role", refused))
        return
    outcome = await deps.requests.role_form(guid)
    if isinstance(outcome, RoleForm):
        metadata = encode_role_change_metadata(guid, outcome.account.username, click.response_url)
        groups = await deps.requests.group_choice()
        view = role_change_modal(form=outcome, private_metadata=metadata, groups=groups)
    else:
        role = outcome.account.user_role if outcome.account is not None else None
        view = role_form_problem_view(outcome.problem, role=role)
    await _update(deps, click, view_id, view)


async def _update(deps: ListenerDeps, click: Click, view_id: str, view: View) -> None:
    await replace_modal(
        deps.client,
        view_id,
        view,
        click=click,
        home=deps.home,
        what="a role change",
        not_opened=FORM_NOT_OPENED,
    )
