"""A person asks for their own Connect account (`/connect-user request`, or the Home tab's
button): a modal opens at once, within the trigger's 3 seconds, and is replaced by the request
form once the bot has found their directory entry by their Slack email — or by why it could not
(none, several, an account they have already)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.home import HomeTab
from bot.slack.interactions import Click
from bot.slack.modals import SLACK_ERRORS, replace_modal, slack_error
from bot.slack.people import SlackPeople
from bot.slack.ui.kit import View
from bot.slack.ui.modals import justification_modal, refusal_view
from bot.slack.ui.own_account import TITLE, own_account_loading_view, own_account_view
from bot.slack.ui.refusals import refusal_message
from bot.slack.ui.values import (
    decode_person_value,
    encode_justification_metadata,
    encode_person_value,
)
from bot.workflow.requests import Requests

log = logging.getLogger(__name__)

FORM_NOT_OPENED = "Slack didn't let me open the request form in time. Please try again."
FAILURE = (
    "Something went wrong on my side while looking for you in the directory. "
    "Please try again in a moment."
)

# Supervised work after a click: (click, work, name, failure message) — ListenerDeps.after_click.
AfterClick = Callable[[Click, Coroutine[Any, Any, None], str, str], None]


@dataclass(frozen=True, slots=True)
class OwnRequestDeps:
    """What the own-request modal needs (the listeners' dependencies, without importing them)."""

    requests: Requests
    people: SlackPeople
    client: AsyncWebClient
    home: HomeTab
    connect_url: str
    after_click: AfterClick


async def open_own_request(
    deps: OwnRequestDeps, click: Click, trigger_id: str | None, client: AsyncWebClient
) -> None:
    """Open the modal now (on the caller's path: the trigger is short-lived), and fill it as
    supervised work."""
    view_id = ""
    if trigger_id:
        try:
            opened = await client.views_open(trigger_id=trigger_id, view=own_account_loading_view())
            view_id = str((opened.get("view") or {}).get("id") or "")
        except SLACK_ERRORS as exc:
            log.warning("views.open failed for an own request: %s", slack_error(exc))
    else:
        log.warning("an own request came without a trigger_id")
    if not view_id:
        await respond.to_clicker(
            deps.client, click, refusal_message(FORM_NOT_OPENED), home=deps.home
        )
        return
    deps.after_click(click, fill_own_request(deps, click, view_id, client), "own-request", FAILURE)


async def fill_own_request(
    deps: OwnRequestDeps, click: Click, view_id: str, client: AsyncWebClient
) -> None:
    # Filing checks this again; asked first so that a guest is not shown a directory entry.
    refused = await deps.people.search_refusal(click.user_id)
    if refused is not None:
        await replace_modal(
            client,
            view_id,
            refusal_view(TITLE, refused),
            click=click,
            home=deps.home,
            what="an own request",
            not_opened=FORM_NOT_OPENED,
        )
        return
    own = await deps.requests.own_entry(click.user_id)
    view: View
    if own.entry is not None and not own.entry.has_account:
        value = encode_person_value(own.entry)
        person = decode_person_value(value)
        assert person is not None  # just encoded
        roles = await deps.requests.roles_offered()
        view = justification_modal(
            person=person,
            private_metadata=encode_justification_metadata(value, click.response_url),
            roles=roles,
        )
    else:
        role_changes = own.entry is not None and bool(await deps.requests.roles_offered())
        view = own_account_view(own, connect_url=deps.connect_url, role_changes=role_changes)
    await replace_modal(
        client,
        view_id,
        view,
        click=click,
        home=deps.home,
        what="an own request",
        not_opened=FORM_NOT_OPENED,
    )
