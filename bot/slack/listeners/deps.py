"""What the listeners are given: the workflow and the Slack-side parts they answer through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.home import HomeTab
from bot.slack.notifier import SlackNotifier
from bot.slack.people import SlackPeople
from bot.tasks import TaskSupervisor
from bot.workflow.requests import Requests

# A Bolt listener: Bolt passes the arguments it names (ack, body, view, event, client, …).
Listener = Callable[..., Awaitable[None]]


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

    @property
    def client(self) -> AsyncWebClient:
        """The bot's Web API client (one connection pool for every Slack call)."""
        return self.notifier.client
