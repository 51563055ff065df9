"""Slack listeners, grouped by kind; each group has one `register(app, deps)`.

Listeners are thin: parse, ack, hand the rest to a supervised task that calls the workflow
and renders its outcome with the Block Kit builders.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp

from bot.slack.home import HomeTab
from bot.slack.notifier import SlackNotifier
from bot.slack.people import SlackPeople
from bot.tasks import TaskSupervisor
from bot.workflow.requests import Requests


@dataclass(frozen=True, slots=True)
class ListenerDeps:
    requests: Requests
    people: SlackPeople
    notifier: SlackNotifier
    home: HomeTab
    supervisor: TaskSupervisor
    approver_channel: str
    connect_url: str
    command: str = "/connect-user"


def register_listeners(app: AsyncApp, deps: ListenerDeps) -> None:
    from bot.slack.listeners import actions, commands, errors, events, home, views
    from bot.slack.listeners.correlation import bind_correlation_id

    app.middleware(bind_correlation_id)
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    home.register(app, deps)
    events.register(app, deps)
    errors.register(app, deps)
