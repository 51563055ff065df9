"""`connect-user-bot serve | socket | check | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.logs import configure_logging
from bot.settings import (
    WHERE_TO_FIND,
    ConfigurationError,
    Settings,
    load_from_environment,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger("bot")


# Slack's answers to apps.connections.open that no retry will fix: the app token is wrong.
TOKEN_REFUSALS = {
    "invalid_auth": "Slack does not know this token: it is mistyped, or was revoked",
    "not_authed": "Slack received no token",
    "token_revoked": "the token was revoked",
    "token_expired": "the token has expired",
    "account_inactive": "the app or workspace behind the token is inactive",
    "not_allowed_token_type": (
        "this is not an app-level token; Socket Mode needs the xapp-… token, not the bot token"
    ),
    "missing_scope": "the token lacks the connections:write scope",
}
# The longest pause between two attempts to reach Slack in Socket Mode.
RECONNECT_MAX_SECONDS = 30.0


class SlackRefusedAppToken(Exception):
    """apps.connections.open refused SLACK_APP_TOKEN; the message says why in words."""

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(
            f"Slack refused SLACK_APP_TOKEN ({error}): {TOKEN_REFUSALS.get(error, error)}. "
            f"Set {WHERE_TO_FIND['slack_app_token']}."
        )


def _configuration_problem(lines: Sequence[str]) -> NoReturn:
    print("The bot's configuration is incomplete or wrong:", file=sys.stderr)
    for line in lines:
        print(f"  - {line}", file=sys.stderr)
    print("\nSee README.md, section Configuration.", file=sys.stderr)
    raise SystemExit(2)


def _load_settings(command: str) -> tuple[Settings, list[str]]:
    try:
        settings, ignored = load_from_environment()
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        print("\nSee README.md, section Configuration.", file=sys.stderr)
        raise SystemExit(2) from None
    # Each way of running needs one secret more than the settings themselves require.
    if command == "serve" and settings.slack_signing_secret is None:
        _configuration_problem(
            [
                "SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify Slack's requests "
                f"({WHERE_TO_FIND['slack_signing_secret']})"
            ]
        )
    if command == "socket" and settings.slack_app_token is None:
        _configuration_problem(
            [f"SLACK_APP_TOKEN is not set: Socket Mode needs {WHERE_TO_FIND['slack_app_token']}"]
        )
    return settings, ignored


def serve(settings: Settings) -> None:
    import uvicorn

    from bot.app import create_asgi_app

    app = create_asgi_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the bot's own handlers (JSON in production)
        proxy_headers=True,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 1,
    )


async def socket_mode(settings: Settings) -> None:
    from bot.slack.people import ApproverChannelRefused

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_socket_mode(settings, stop)
    except (SlackRefusedAppToken, ApproverChannelRefused) as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


async def run_socket_mode(settings: Settings, stop: asyncio.Event, **runtime_options: Any) -> None:
    """Serve Slack over Socket Mode until `stop` is set, then finish in-flight work and return.

    Raises SlackRefusedAppToken when Slack refuses the app token, at start or at a reconnection.
    `stop` is honoured at any moment, also while Slack cannot be reached: slack_sdk's client
    retries opening a connection forever, so its connecting runs in a task that is cancelled.
    """
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.runtime import build_runtime

    if settings.metrics_enabled:
        log.warning("METRICS_ENABLED is ignored in Socket Mode: no HTTP server serves /metrics")
        settings = settings.model_copy(update={"metrics_enabled": False})
    assert settings.slack_app_token is not None
    runtime = build_runtime(settings, socket_mode=True, **runtime_options)
    stopping = asyncio.create_task(stop.wait(), name="socket-mode-stop")
    try:
        started = await _start_unless_stopped(runtime, stopping)
    except BaseException:
        stopping.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
        raise
    if not started:
        log.info("stopping before start-up finished")
        await runtime.stop()
        return
    handler = AsyncSocketModeHandler(runtime.bolt, settings.slack_app_token.get_secret_value())
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    _watch_connection_opening(handler.client, refused)
    # slack_bolt's Socket Mode handler has no annotations.
    connecting = asyncio.create_task(
        handler.connect_async(),  # type: ignore[no-untyped-call]
        name="socket-mode-connect",
    )
    first: set[asyncio.Future[Any]] = {connecting, stopping, refused}
    try:
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if connecting.done() and not refused.done() and not connecting.cancelled():
            connecting.result()
            log.info("connected to Slack in Socket Mode; Ctrl-C to stop")
            then: set[asyncio.Future[Any]] = {stopping, refused}
            await asyncio.wait(then, return_when=asyncio.FIRST_COMPLETED)
        if refused.done():
            raise SlackRefusedAppToken(refused.result())
    finally:
        for task in (connecting, stopping):
            task.cancel()
        await asyncio.gather(connecting, stopping, return_exceptions=True)
        with contextlib.suppress(Exception):
            await handler.close_async()  # type: ignore[no-untyped-call]
        await runtime.stop()


async def _start_unless_stopped(runtime: Runtime, stopping: asyncio.Task[Any]) -> bool:
    """Start `runtime`; False when `stopping` finished first, and the start was cancelled.

    Start-up reads the approver channel from Slack and migrates the database: a Slack that
    accepts connections and never answers would hold a signal for its timeout, per call.
    Raises what `runtime.start` raises.
    """
    starting = asyncio.create_task(runtime.start(), name="socket-mode-start")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    if starting.cancelled():
        return False
    starting.result()
    return True


def _watch_connection_opening(client: Any, refused: asyncio.Future[str]) -> None:
    """Wrap the Socket Mode client's apps.connections.open call.

    A refused token resolves `refused` and closes the client (its connect loop then stops instead
    of retrying forever). Slack being unreachable or failing is retried here with a growing pause
    and one plain warning per attempt, instead of the client's traceback every few seconds.
    """
    issue_new_wss_url = client.issue_new_wss_url

    async def issue_or_wait() -> str:
        delay = 1.0
        while True:
            try:
                url: str = await issue_new_wss_url()
                return url
            except SlackApiError as exc:
                error = str(exc.response.get("error") or exc.response.status_code)
                if error in TOKEN_REFUSALS:
                    client.closed = True
                    if not refused.done():
                        refused.set_result(error)
                    raise
                problem = f"Slack answered {error}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                problem = f"Slack cannot be reached ({type(exc).__name__})"
            log.warning("Socket Mode: %s; trying again in %.0fs", problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    client.issue_new_wss_url = issue_or_wait


async def migrate(settings: Settings) -> None:
    from bot.store.database import create_engine
    from bot.store.migrate import current_revision, upgrade
    from bot.store.urls import redact_url

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        print(
            f"{redact_url(settings.database_url)} is at revision {await current_revision(engine)}"
        )
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="connect-user-bot",
        description="Provision Posit Connect accounts from Slack, each approved by a human.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve Slack's HTTP requests on $PORT")
    sub.add_parser("socket", help="connect to Slack in Socket Mode (no public URL needed)")
    sub.add_parser("check", help="check the configuration against Connect and Slack")
    sub.add_parser("migrate", help="bring the database schema up to date")
    args = parser.parse_args(argv)

    settings, removed = _load_settings(args.command)
    if args.command == "check":
        # `check` prints a report for a person on stdout; library logs below WARNING are noise
        # there, and what remains goes to stderr as text, never JSON between the report's lines.
        quiet = settings.log_level if settings.log_level in ("WARNING", "ERROR") else "WARNING"
        configure_logging(quiet, "text")
    else:
        configure_logging(settings.log_level, settings.log_format)
    if removed:
        log.warning("ignoring %s: this bot is configured for one workspace", ", ".join(removed))

    if args.command == "serve":
        serve(settings)
    elif args.command == "socket":
        asyncio.run(socket_mode(settings))
    elif args.command == "migrate":
        asyncio.run(migrate(settings))
    elif args.command == "check":
        from bot.check import run_checks

        raise SystemExit(asyncio.run(run_checks(settings)))


if __name__ == "__main__":
    main()
