"""The web app: Slack's endpoint, the health check and the visitor pages, served by a runtime.

Wiring only: the parts come from `bot.runtime`, the routes from `bot.web`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.web.routes import build_routes


def create_asgi_app(settings: Settings, *, runtime: Runtime | None = None) -> Starlette:
    """The web app, with the runtime's life tied to it."""
    runtime = runtime or build_runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Starlette(
        routes=build_routes(runtime.web_deps()),
        lifespan=lifespan,
        middleware=[Middleware(_PlainStartupRefusal, runtime=runtime)],
    )
    app.state.runtime = runtime
    return app


class _PlainStartupRefusal:
    """A refusal to start (a public approver channel) reaches the server's log as the plain
    message, not as Starlette's traceback; the server then exits non-zero."""

    def __init__(self, app: ASGIApp, *, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_plainly(message: Message) -> None:
            refusal = self.runtime.start_refusal
            if message["type"] == "lifespan.startup.failed" and refusal:
                message = {**message, "message": refusal}
            await send(message)

        await self.app(scope, receive, send_plainly)
