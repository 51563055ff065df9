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
from bot.slack.own_request import OwnRequestDeps
from bot.slack.people import SlackPeople
from bot.slack.ui.refusals import refusal_message
from bot.tasks import TaskSupervisor
from bot.workflow.batches import Batches
from bot.workflow.offboarding import Deactivations
from bot.workflow.requests import Requests
from bot.workflow.seats import SeatReport
from bot.workflow.workflow_runs import WorkflowRuns

# A Bolt listener: Bolt passes the arguments it names (ack, body, view, event, client, …).
Listener = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ListenerDeps:
    requests: Requests
    batches: Batches
    workflow_runs: WorkflowRuns
    people: SlackPeople
    notifier: SlackNotifier
    home: HomeTab
    seat_report: SeatReport
    supervisor: TaskSupervisor
    approver_channel: str
    connect_url: str
    command: str = "/connect-user"
    # Members Slack deactivates: the approvers are asked to lock their Connect accounts.
    deactivations: Deactivations | None = None

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

    def after_submit(
        self,
        user_id: str,
        response_url: str | None,
        work: Coroutine[Any, Any, None],
        *,
        name: str,
        failure: str,
    ) -> None:
        """Run a form's work after ack() under supervision; if it fails, tell the person who
        sent it `failure` (through the response_url the form carried, else ephemeral or DM)."""

        async def report_failure(_: BaseException) -> None:
            await respond.privately(
                self.client,
                user_id=user_id,
                message=refusal_message(failure),
                response_url=response_url,
            )

        self.supervisor.spawn(work, name=name, on_error=report_failure)

    @property
    def own_request(self) -> OwnRequestDeps:
        def after_click(
            click: Click, work: Coroutine[Any, Any, None], name: str, failure: str
        ) -> None:
            self.after_click(click, work, name=name, failure=failure)

        return OwnRequestDeps(
            requests=self.requests,
            people=self.people,
            client=self.client,
            home=self.home,
            connect_url=self.connect_url,
            after_click=after_click,
        )

    async def refuse_unless_searcher(self, user_id: str, response_url: str | None) -> bool:
        """Tell `user_id` why they may not see directory data, if they may not (the search
        gate, checked again when a form is submitted: it may be forged, or its sender may no
        longer search). True when refused."""
        refused = await self.people.search_refusal(user_id)
        if refused is None:
            return False
        await respond.privately(
            self.client,
            user_id=user_id,
            message=refusal_message(refused),
            response_url=response_url,
        )
        return True
