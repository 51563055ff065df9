"""HTTP routes: Slack's endpoint, the health check, and the visitor pages (bot.web.visitors)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.web.visitors import visitor_routes

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

# Slack's payloads are a few kilobytes; anything far larger is not Slack and is refused unread.
MAX_SLACK_BODY_BYTES = 256 * 1024
SLACK_CONTENT_TYPES = ("application/x-www-form-urlencoded", "application/json")


def build_routes(runtime: Runtime) -> list[Route]:
    handler = AsyncSlackRequestHandler(runtime.bolt)

    async def slack_events(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in SLACK_CONTENT_TYPES:
            return PlainTextResponse("Unsupported content type", status_code=415)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_SLACK_BODY_BYTES):
            return PlainTextResponse("Request body too large", status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_SLACK_BODY_BYTES:
                return PlainTextResponse("Request body too large", status_code=413)
        # Starlette caches the body it read, so Bolt's adapter reads the same bytes again.
        request._body = bytes(body)
        return await handler.handle(request)

    async def healthz(_: Request) -> Response:
        try:
            await runtime.store.ping()
        except Exception as exc:
            log.warning("health check: store unreachable: %s", type(exc).__name__)
            return JSONResponse({"status": "unhealthy", "store": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "store": "ok"})

    return [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *visitor_routes(runtime),
    ]
