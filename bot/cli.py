"""`connect-user-bot serve | socket | check | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from bot.logs import configure_logging
from bot.settings import ConfigurationError, Settings, isolate_from_bolt_environment

log = logging.getLogger("bot")


def _load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        print("\nSee README.md, section Configuration.", file=sys.stderr)
        raise SystemExit(2) from None


def serve(settings: Settings) -> None:
    import uvicorn

    from bot.app import create_asgi_app

    if settings.slack_signing_secret is None:
        print(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify Slack's requests.",
            file=sys.stderr,
        )
        raise SystemExit(2)
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
    if settings.slack_app_token is None:
        print(
            "SLACK_APP_TOKEN (xapp-…) is not set: Socket Mode needs an app-level token.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    from bot.slack.people import ApproverChannelRefused

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_socket_mode(settings, stop)
    except ApproverChannelRefused as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


async def run_socket_mode(settings: Settings, stop: asyncio.Event, **runtime_options: Any) -> None:
    """Serve Slack over Socket Mode until `stop` is set, then finish in-flight work and exit."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.app import build_runtime

    assert settings.slack_app_token is not None
    runtime = build_runtime(settings, socket_mode=True, **runtime_options)
    await runtime.start()
    handler = AsyncSocketModeHandler(runtime.bolt, settings.slack_app_token.get_secret_value())
    try:
        await handler.connect_async()
        log.info("connected to Slack in Socket Mode; Ctrl-C to stop")
        await stop.wait()
    finally:
        await handler.close_async()
        await runtime.stop()


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

    settings = _load_settings()
    removed = isolate_from_bolt_environment(os.environ)
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
