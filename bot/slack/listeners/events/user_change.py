"""user_change: a member's profile changed (deactivation included). Their cached profile is
dropped (read again next time); a deactivation asks the approvers whether to lock their Connect
account, and a reactivation closes that question while nobody has answered it.

Most of these events are profile edits: everything is decided from the event itself before any
I/O, and an edit costs one indexed query (is a question about this person open?)."""

from __future__ import annotations

import logging
from typing import Any

from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.workflow.offboarding import SlackPerson

log = logging.getLogger(__name__)


def listener(deps: ListenerDeps) -> Listener:
    async def user_changed(event: dict[str, Any]) -> None:
        # Fires for every profile edit of every member: dropping one entry is all it costs.
        user = event.get("user")
        if not isinstance(user, dict):
            return
        user_id = user.get("id")
        if not (isinstance(user_id, str) and user_id):
            return
        deps.people.forget_profile(user_id)
        if (
            deps.deactivations is None
            or user.get("is_bot")
            or user.get("is_app_user")
            or user_id == "USLACKBOT"
        ):
            return
        if user.get("deleted") is True:
            deps.supervisor.spawn(
                deactivated(deps, user_id, user), name="deactivated", on_error=_log_failure
            )
        elif user.get("deleted") is False:
            deps.supervisor.spawn(
                deps.deactivations.reactivated(user_id), name="reactivated", on_error=_log_failure
            )

    return user_changed


async def deactivated(deps: ListenerDeps, user_id: str, user: dict[str, Any]) -> None:
    assert deps.deactivations is not None
    filed = await deps.deactivations.deactivated(slack_person(user_id, user))
    # Slack does not order events: a reactivation handled while this one looked the account up
    # found nothing to close. Asked again now, Slack's answer wins over the event's.
    if filed is not None and await deps.people.is_active_member(user_id):
        await deps.deactivations.reactivated(user_id)


def slack_person(user_id: str, user: dict[str, Any]) -> SlackPerson:
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    assert isinstance(profile, dict)

    def text(value: object) -> str:
        return value.strip() if isinstance(value, str) else ""

    names: list[str] = [text(profile.get("first_name")), text(profile.get("last_name"))]
    for real_name in (profile.get("real_name"), user.get("real_name")):
        names.extend(text(real_name).split())
    return SlackPerson(
        slack_id=user_id,
        email=text(profile.get("email")),
        names=tuple(name for name in names if name),
    )


async def _log_failure(exc: BaseException) -> None:
    log.error("handling a member's deactivation or reactivation failed: %s", type(exc).__name__)
