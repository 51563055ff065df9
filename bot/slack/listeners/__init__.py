"""Slack listeners: one module per command, action, view and event, grouped in packages whose
`register(app, deps)` registers them (the layout of slack-samples/bolt-python-starter-template).

Listeners are thin: parse, ack, hand the rest to a supervised task that calls the workflow and
renders its outcome with `bot.slack.ui`. They never import each other: what several need lives
outside them (`deps`, `bot.slack.interactions`, `respond`, `home`, `values`, `ui`).
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import actions, commands, errors, events, functions, views
from bot.slack.listeners.correlation import bind_correlation_id
from bot.slack.listeners.deps import ListenerDeps


def register_listeners(app: AsyncApp, deps: ListenerDeps) -> None:
    app.middleware(bind_correlation_id)
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    events.register(app, deps)
    functions.register(app, deps)
    errors.register(app)
