"""Shutdown lets in-flight work finish; work after ack() is supervised."""

from __future__ import annotations

import asyncio

from bot.tasks import TaskSupervisor
from bot.workflow.states import RequestState
from tests.support.bot_under_test import REQUESTER, BotUnderTest
from tests.support.flows import PUT, confirm_approval, dms_to, file_request


async def test_stop_lets_an_approval_in_flight_finish(bot: BotUnderTest) -> None:
    request_id = await file_request(bot)
    bot.connect.latency = {"PUT": 0.5}
    await confirm_approval(bot, request_id)
    await asyncio.sleep(0.1)  # the PUT is in flight
    await bot.stop()
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert bot.connect.count(**PUT) == 1
    assert len(dms_to(bot, REQUESTER)) == 1, "owed messages go out before exit"


async def test_supervisor_reports_failures_and_cancels_stragglers() -> None:
    supervisor = TaskSupervisor()
    reported: list[BaseException] = []

    async def fail() -> None:
        raise ValueError("boom")

    async def report(exc: BaseException) -> None:
        reported.append(exc)

    supervisor.spawn(fail(), name="fails", on_error=report)
    supervisor.spawn(asyncio.sleep(60), name="straggler")
    cancelled = await supervisor.drain(0.2)
    assert cancelled == 1
    assert len(reported) == 1 and isinstance(reported[0], ValueError)
    assert supervisor.in_flight == 0
