"""`GET /metrics`: this replica's Prometheus metrics, for a scraper holding METRICS_TOKEN.

The token comes as `Authorization: Bearer …`, or as `X-Metrics-Token` where a proxy in front of
the bot uses `Authorization` for itself (Posit Connect reads `Authorization: Key …` to let the
scraper in). Tokens are compared in constant time, and a refusal never says which part was wrong.
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.metrics import PrometheusMetrics

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-metrics-token"


def metrics_routes(metrics: PrometheusMetrics | None, token: str | None) -> list[Route]:
    """The route when metrics are on (none otherwise: a 404, as for any unknown path)."""
    if metrics is None:
        return []
    expected = token.encode() if token else None

    async def serve_metrics(request: Request) -> Response:
        if expected is not None and not _presents(request, expected):
            log.info("refused a request to /metrics: no valid metrics token")
            return PlainTextResponse(
                "A metrics token is required (Authorization: Bearer, or X-Metrics-Token).",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body = await metrics.exposition()
        return Response(body, media_type=metrics.content_type)

    return [Route("/metrics", serve_metrics, methods=["GET"])]


def _presents(request: Request, expected: bytes) -> bool:
    offered = []
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        offered.append(value.strip())
    if TOKEN_HEADER in request.headers:
        offered.append(request.headers[TOKEN_HEADER].strip())
    # Every candidate is compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(candidate.encode(), expected) for candidate in offered]
    return any(matches)
