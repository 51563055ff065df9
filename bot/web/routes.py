"""HTTP routes: Slack's endpoint, the health check, and the visitor pages (bot.web.visitors)."""

from __future__ import annotations

import logging

from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.web import slack_inbound
from bot.web.deps import WebDeps
from bot.web.metrics_route import metrics_routes
from bot.web.slack_inbound import (
    SLACK_CONTENT_TYPES,
    BodyRefused,
    MalformedBody,
    VerifiedBoltRequest,
    is_ssl_check,
    media_type,
    parse_body,
    read_body,
    signature_problem,
)
from bot.web.visitors import visitor_routes

log = logging.getLogger(__name__)


def build_routes(deps: WebDeps) -> list[Route]:
    bolt = deps.bolt
    secret = deps.settings.slack_signing_secret
    signing_secret = secret.get_secret_value() if secret is not None else ""

    async def slack_events(request: Request) -> Response:
        """Verify first, parse second: see bot.web.slack_inbound.

        This route is the only way into the Bolt app in HTTP mode, and every request that passes
        it is signed; Bolt's own signature middleware stays on and checks the same text again.
        """
        content_type = request.headers.get("content-type", "")
        if media_type(content_type) not in SLACK_CONTENT_TYPES:
            return PlainTextResponse("Unsupported content type", status_code=415)
        try:
            body = await read_body(
                request,
                limit=slack_inbound.MAX_SLACK_BODY_BYTES,
                seconds=slack_inbound.BODY_READ_SECONDS,
            )
        except BodyRefused as refused:
            log.info("refused a request to /slack/events: %s", refused)
            return PlainTextResponse(str(refused), status_code=refused.status)
        if is_ssl_check(content_type, body, request.headers):
            return Response(status_code=200)
        problem = (
            signature_problem(
                signing_secret,
                body,
                request.headers.get("x-slack-request-timestamp"),
                request.headers.get("x-slack-signature"),
            )
            if signing_secret
            else "no signing secret configured"
        )
        if problem is not None:
            log.info("refused a request to /slack/events: %s", problem)
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            text, parsed = parse_body(content_type, body)
            bolt_request = VerifiedBoltRequest(
                raw_body=text,
                body=parsed,
                query=request.query_params,
                headers={key: request.headers.getlist(key) for key in request.headers},
            )
        except MalformedBody as exc:
            log.warning("refused a signed request to /slack/events: %s", exc)
            return PlainTextResponse(f"Malformed request: {exc}", status_code=400)
        except Exception as exc:  # Bolt reading ids out of a body of an unexpected shape
            log.warning("refused a signed request to /slack/events: %s", type(exc).__name__)
            return PlainTextResponse("Malformed request", status_code=400)
        return to_starlette_response(await bolt.async_dispatch(bolt_request))

    async def healthz(_: Request) -> Response:
        try:
            await deps.store.ping()
        except Exception as exc:
            log.warning("health check: store unreachable: %s", type(exc).__name__)
            return JSONResponse({"status": "unhealthy", "store": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "store": "ok"})

    return [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *visitor_routes(deps),
        *metrics_routes(deps.metrics, _metrics_token(deps)),
    ]


def _metrics_token(deps: WebDeps) -> str | None:
    token = deps.settings.metrics_token
    return token.get_secret_value() if token is not None else None
