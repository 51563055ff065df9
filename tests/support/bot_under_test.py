"""The bot under test: the real app under a real ASGI server (uvicorn) on a loopback port, driven
with signed Slack requests, against the fake Slack and fake Connect servers; the identities and
settings every test starts from."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import uvicorn

from bot.app import create_asgi_app
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import (
    block_actions_body,
    post_signed,
    slash_command_body,
    view_submission_body,
)

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-test-bot-token-0000"
APPROVER_CHANNEL = "CAPPROVERS"
REQUESTER = "UREQUESTER"
APPROVER = "UAPPROVER1"
APPROVER_2 = "UAPPROVER2"
OUTSIDER = "UOUTSIDER1"


def make_settings(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake_slack.api_url,
        "slack_approver_channel": APPROVER_CHANNEL,
        "connect_server": fake_connect.url,
        "connect_api_key": fake_connect.api_key,
        "connect_timeout": 2.0,
        "database_url": database_url,
        "search_cache_ttl": 0,
        "shutdown_grace_seconds": 5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class BotUnderTest:
    """One running bot process-equivalent: its runtime, served by uvicorn on a loopback port."""

    runtime: Runtime
    base_url: str
    http: httpx.AsyncClient
    slack: FakeSlack
    connect: FakeConnect
    secret: str = SIGNING_SECRET
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    sent: list[str] = field(default_factory=list)

    async def post(self, body: str, **kwargs: Any) -> httpx.Response:
        return await post_signed(self.http, body, self.secret, **kwargs)

    async def command(self, text: str, *, user_id: str = REQUESTER) -> tuple[httpx.Response, str]:
        response_url = self.slack.new_response_url()
        body = slash_command_body(text=text, user_id=user_id, response_url=response_url)
        return await self.post(body), response_url

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str,
        ephemeral: bool = False,
        response_url: str | None = None,
        channel_id: str = APPROVER_CHANNEL,
        message_ts: str = "1700000000.000100",
    ) -> tuple[httpx.Response, str]:
        response_url = response_url or self.slack.new_response_url()
        body = block_actions_body(
            action_id=action_id,
            value=value,
            user_id=user_id,
            response_url=response_url,
            ephemeral=ephemeral,
            channel_id=channel_id,
            message_ts=message_ts,
        )
        return await self.post(body), response_url

    async def submit(
        self,
        callback_id: str,
        values: dict[str, dict[str, Any]],
        private_metadata: str,
        *,
        user_id: str,
    ) -> httpx.Response:
        body = view_submission_body(
            callback_id=callback_id,
            values=values,
            private_metadata=private_metadata,
            user_id=user_id,
        )
        return await self.post(body)

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the work after ack() is done and every owed message has been handled
        (delivered or given up), whichever worker (the background loop or this call) handles it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            await self.runtime.supervisor.join()
            await self.runtime.notifier.deliver_due()
            if (
                self.runtime.supervisor.in_flight == 0
                and await self.runtime.store.outbox_pending_count() == 0
            ):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the bot did not settle: work or messages still pending")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = None
        await self.http.aclose()


async def start_bot(
    settings: Settings,
    slack: FakeSlack,
    connect: FakeConnect,
    *,
    instance_id: str = "test-1",
    clock: Callable[[], datetime] | None = None,
) -> BotUnderTest:
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    runtime = build_runtime(settings, instance_id=instance_id, **extra)
    app = create_asgi_app(settings, runtime=runtime)
    sock = free_socket()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    return BotUnderTest(
        runtime=runtime,
        base_url=base_url,
        http=httpx.AsyncClient(base_url=base_url, timeout=10),
        slack=slack,
        connect=connect,
        _server=server,
        _task=task,
    )


def response_text(message: dict[str, Any]) -> str:
    """Everything a person would read in a message: fallback text and every text in its blocks."""
    return (
        message.get("text", "") + "\n" + json.dumps(message.get("blocks", []), ensure_ascii=False)
    )
