"""What the listeners are given: the workflow and the Slack-side parts they answer through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.home import HomeTab
from bot.slack.interactions import Click
from bot.slack.notifier import SlackNotifier
from bot.slack.people import SlackPeople
from bot.slack.ui.refusals import refusal_message
from bot.tasks import TaskSupervisor
from bot.workflow.requests import Requests
from bot.workflow.seats import SeatReport

# A Bolt listener: Bolt passes the arguments it names (ack, body, view, event, client, …).
Listener = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ListenerDeps:
    requests: Requests
    people: SlackPeople
    notifier: SlackNotifier
    home: HomeTab
    seat_report: SeatReport
    supervisor: TaskSupervisor
    approver_channel: str
    connect_url: str
    command: str = "/connect-user"

    @property
    def client(self) -> AsyncWebClient:
        """The bot's Web API client (one connection pool for every Slack call)."""
        return self.notifier.client

    def after_click(
        self, click: Click, work: Coroutine[Any, Any, None], *, name: str, failure: str
    ) -> None:
        """Run a click's work after ack() under supervision; if it fails, tell the clicker
        `failure` wherever they clicked (after ack(), nothing else would answer them)."""

        async def report_failure(_: BaseException) -> None:
            await respond.to_clicker(self.client, click, refusal_message(failure), home=self.home)

        self.supervisor.spawn(work, name=name, on_error=report_failure)
