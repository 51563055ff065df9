"""`app`: the bot as an importable ASGI application, for hosts that import one instead of running
`connect-user-bot serve` (Posit Connect: `rsconnect deploy fastapi --entrypoint bot.asgi:app`).

Only hosting uses this module. Importing it does nothing: the settings are read and the app built
when the server sends its first event (the lifespan startup), so rsconnect, linters and tests can
import it without an environment. Configuration problems then surface as a failed startup whose
message names the problem, in the content's log on Connect.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.connect.errors import ConnectError
from bot.settings import ConfigurationError, load_from_environment

log = logging.getLogger("bot")

KEY_OWNER_TIMEOUT = 10.0


def build_hosted_app() -> ASGIApp:
    """Read the environment and build the app as `connect-user-bot serve` would.

    Raises ConfigurationError naming what is missing or wrong.
    """
    from bot.app import create_asgi_app
    from bot.logs import configure_logging

    settings, removed = load_from_environment()
    if settings.slack_signing_secret is None:
        raise ConfigurationError(
            "SLACK_SIGNING_SECRET is not set: hosted in HTTP mode, the bot needs it to verify "
            "Slack's requests."
        )
    if settings.metrics_enabled and settings.metrics_token is None:
        # Slack reaches the content only when its access is "Anyone - no login required", so
        # an open /metrics would be open to the whole internet.
        raise ConfigurationError(
            "METRICS_TOKEN is not set but METRICS_ENABLED is true: hosted on Posit Connect, "
            "/metrics would answer anyone on the internet. Set METRICS_TOKEN (at least 16 "
            "characters) or METRICS_ENABLED=false."
        )
    configure_logging(settings.log_level, settings.log_format)
    if removed:
        log.warning("ignoring %s: this bot is configured for one workspace", ", ".join(removed))
    app = create_asgi_app(settings)
    return _AnnounceKeyOwner(app)


class _AnnounceKeyOwner:
    """Logs, once started, whose Connect API key the bot uses.

    Connect gives hosted content a CONNECT_API_KEY of its own (the publisher's). The bot must use
    its dedicated key instead, and this line in the content's log is how an administrator sees
    which one won.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_and_announce(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                await self._announce()

        await self.app(scope, receive, send_and_announce)

    async def _announce(self) -> None:
        runtime = getattr(getattr(self.app, "state", None), "runtime", None)
        if runtime is None:
            return
        try:
            owner = await asyncio.wait_for(runtime.connect.current_user(), KEY_OWNER_TIMEOUT)
        except (ConnectError, TimeoutError) as exc:
            log.warning("could not ask Connect whose API key this is: %s", exc)
            return
        log.info(
            "Connect API key in use belongs to %s (role: %s); visitor credentials are %s",
            owner.username,
            owner.user_role or "unknown",
            "trusted" if runtime.settings.trust_connect_credentials else "ignored",
        )


class LazyApp:
    """Builds the real app on the first ASGI event, so importing this module has no effects."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None
        self._problem: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None and self._problem is None:
            try:
                self._app = build_hosted_app()
            except ConfigurationError as exc:
                self._problem = str(exc)
            except Exception as exc:
                # Anything else would escape into the server's lifespan handling, which in its
                # "auto" mode reports only that lifespan looks unsupported and carries on.
                self._problem = f"the bot could not be built: {type(exc).__name__}: {exc}"
            if self._problem is not None:
                print(self._problem, file=sys.stderr)
        if self._app is not None:
            await self._app(scope, receive, send)
            return
        problem = self._problem or "the bot is not configured"
        if scope["type"] == "lifespan":
            # Refuse to start, with the reason: the host shows it and does not route traffic to
            # a process that would fail every request.
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": problem})
            return
        if scope["type"] == "http":
            response = PlainTextResponse(
                "connect-user-bot is not configured; see the content's log.", status_code=503
            )
            await response(scope, receive, send)


app = LazyApp()
