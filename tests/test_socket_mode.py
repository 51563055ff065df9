"""Socket Mode end to end: the real AsyncSocketModeHandler against the fake Slack's websocket."""

from __future__ import annotations

import asyncio
import contextlib

from bot.cli import run_socket_mode
from tests.conftest import REQUESTER, make_settings, response_text


async def test_slash_command_over_socket_mode(fake_slack, fake_connect, database_url) -> None:
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        slack_signing_secret=None,
        slack_app_token="xapp-test-app-token-0000",
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_socket_mode(settings, stop, instance_id="socket-1"))
    try:
        for _ in range(500):
            if fake_slack.socket_connections:
                break
            assert not running.done(), running.exception()
            await asyncio.sleep(0.01)
        assert fake_slack.socket_connections == 1
        opened = fake_slack.calls_to("apps.connections.open")[-1]
        assert opened.token == "xapp-test-app-token-0000"

        response_url = fake_slack.new_response_url()
        await fake_slack.socket_send(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "token": "unused",
                    "team_id": "T0001",
                    "team_domain": "test",
                    "channel_id": "CGENERAL",
                    "channel_name": "general",
                    "user_id": REQUESTER,
                    "user_name": "requester",
                    "command": "/connect-user",
                    "text": "search julie",
                    "api_app_id": "A0APP",
                    "response_url": response_url,
                    "trigger_id": "1.2.3",
                },
            }
        )
        ack = await fake_slack.wait_for_socket_ack("env-1")
        assert ack["envelope_id"] == "env-1"
        answer = (await fake_slack.wait_for_response(response_url, timeout=10))[-1]
        assert "julie2" in response_text(answer)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 15)
    assert running.done() and running.exception() is None
