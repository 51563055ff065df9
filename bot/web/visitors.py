"""Pages for people, when the bot is hosted on Posit Connect: `GET /hello` and `GET /requests`.

Connect tells hosted content who the visitor is in the `RStudio-Connect-Credentials` header. That
header is only believed with TRUST_CONNECT_CREDENTIALS=true: anywhere but behind Connect, anyone
can send it and be whoever they like. Without that trust `/hello` greets everyone as a stranger
and `/requests` does not exist (404), so a bot reachable from the internet shows no directory
data to a forged header.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.cache.backend import build_backend
from bot.cache.keyed import KeyedCache
from bot.store.audit_queries import AuditRecord, iter_requests, list_requests, request_insights
from bot.web.access import AccessDecision, AuditAccess
from bot.web.audit_page import (
    AuditQuery,
    BadQuery,
    Format,
    csv_filename,
    csv_header,
    csv_line,
    is_format,
    negotiate,
    page_json,
    parse_query,
    parse_view,
    render_error,
    render_page,
)
from bot.web.credentials import (
    ANONYMOUS,
    HEADER_NAME,
    CredentialsError,
    IdentityUnavailable,
    Visitor,
    VisitorResolver,
    parse_credentials,
)
from bot.web.deps import WebDeps
from bot.web.insights import (
    build_view,
    insights_json,
    parse_insights_query,
    render_insights,
    week_starts,
)

log = logging.getLogger(__name__)

# The answer depends on who asks: no shared cache may keep one visitor's page for the next.
_PRIVATE = {
    "Cache-Control": "private, no-store",
    "Vary": "Accept",
    "X-Content-Type-Options": "nosniff",
}
_PAGE_HEADERS = {
    **_PRIVATE,
    "Referrer-Policy": "same-origin",
    # Inline styles only; no scripts at all. Framing by the same origin is allowed because
    # Connect's dashboard shows content in an iframe of its own.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'self'"
    ),
}
_ERROR_TITLES = {
    400: "Bad request",
    401: "Please log in",
    403: "Not allowed",
    503: "Temporarily unavailable",
}


class VisitorPages:
    """The endpoints, with what they need from the runtime resolved once."""

    def __init__(self, deps: WebDeps) -> None:
        settings = deps.settings
        self._engine = deps.engine
        self._clock = deps.clock
        self.trusted = settings.trust_connect_credentials
        # Who a visitor is and their Connect role decide access to the audit trail: kept in this
        # process only, never in Redis, where whoever can write could make themselves an auditor.
        self.resolver = VisitorResolver(
            deps.connect,
            KeyedCache(build_backend(None)),
            use_guid=settings.connect_credentials_use_guid,
        )
        self.access = AuditAccess(
            self.resolver,
            users=settings.audit_users,
            groups=settings.audit_groups,
            allow_connect_admins=settings.audit_allow_connect_admins,
        )

    def routes(self) -> list[Route]:
        routes = [Route("/hello", self.hello, methods=["GET"])]
        if self.trusted:
            routes.append(Route("/requests", self.requests, methods=["GET"]))
        return routes

    async def visitor(self, request: Request) -> Visitor:
        """Who the header says is visiting; anonymous unless the header is trusted."""
        if not self.trusted:
            return ANONYMOUS
        values = request.headers.getlist(HEADER_NAME)
        if len(values) > 1:
            # A client's copy survived next to Connect's, or a proxy added one: believe neither.
            raise CredentialsError(f"{HEADER_NAME} was sent more than once")
        credentials = parse_credentials(values[0] if values else None)
        return await self.resolver.resolve(credentials)

    async def hello(self, request: Request) -> Response:
        try:
            visitor = await self.visitor(request)
        except CredentialsError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400, headers=_PRIVATE)
        except IdentityUnavailable as exc:
            return JSONResponse({"error": str(exc)}, status_code=503, headers=_PRIVATE)
        if visitor.identified:
            message = f"So nice to see you, {visitor.username}."
        else:
            message = "Howdy, stranger."
        return JSONResponse({"message": message}, headers=_PRIVATE)

    async def requests(self, request: Request) -> Response:
        accept = request.headers.get("accept")
        # Identity first: a stranger learns nothing, not even which parameters are valid.
        try:
            visitor = await self.visitor(request)
            result = await self.access.decide(visitor)
        except CredentialsError as exc:
            return _error(_format_hint(request, accept), 400, str(exc))
        except IdentityUnavailable as exc:
            return _error(_format_hint(request, accept), 503, str(exc))
        if result.decision is AccessDecision.ANONYMOUS:
            return _error(
                _format_hint(request, accept),
                401,
                "The audit page needs to know who you are: log in to Posit Connect and open it "
                "from there.",
            )
        if result.decision is AccessDecision.FORBIDDEN:
            log.info("audit page refused to %s (%s)", visitor.username, result.reason)
            return _error(
                _format_hint(request, accept),
                403,
                f"{visitor.username} may not see the account requests. Ask the bot's "
                "administrator to add you to AUDIT_USERS or AUDIT_GROUPS.",
            )
        try:
            view = parse_view(request.query_params)
            if view == "insights":
                return await self._insights(request, accept, visitor, result.reason)
            query = parse_query(request.query_params, accept)
        except BadQuery as exc:
            return _error(_format_hint(request, accept), 400, str(exc))
        log.info("audit page %s for %s (%s)", query.format, visitor.username, result.reason)
        if query.format == "csv":
            return await self._csv(query)
        try:
            page = await list_requests(
                self._engine, query.filter, page=query.page, per_page=query.per_page
            )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("audit page: the store could not be read: %s", type(exc).__name__)
            return _error(query.format, 503, "The request history cannot be read right now.")
        if query.format == "json":
            return JSONResponse(page_json(page), headers=_PRIVATE)
        html = render_page(page, query, visitor=visitor.username or "")
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    async def _insights(
        self, request: Request, accept: str | None, visitor: Visitor, reason: str
    ) -> Response:
        """The insights view: the caller has let the visitor in already. Raises BadQuery."""
        query = parse_insights_query(request.query_params, accept)
        log.info("audit insights %s for %s (%s)", query.format, visitor.username, reason)
        now = self._clock()
        try:
            data = await request_insights(self._engine, week_starts(now, query.weeks))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("audit insights: the store could not be read: %s", type(exc).__name__)
            return _error(query.format, 503, "The request history cannot be read right now.")
        insights = build_view(data, now=now)
        if query.format == "json":
            return JSONResponse(insights_json(insights), headers=_PRIVATE)
        html = render_insights(insights, query, visitor=visitor.username or "")
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    async def _csv(self, query: AuditQuery) -> Response:
        records = iter_requests(self._engine, query.filter)
        # The first batch is read before the response starts: a store that cannot be read is a
        # 503 with a message, not a 200 whose download breaks off after the header line.
        try:
            first: AuditRecord | None = await anext(records)
        except StopAsyncIteration:
            first = None
        except (SQLAlchemyError, OSError) as exc:
            log.warning("audit export: the store could not be read: %s", type(exc).__name__)
            return _error("csv", 503, "The request history cannot be read right now.")

        async def body() -> AsyncIterator[str]:
            # Streamed: a long history never sits in memory as a whole.
            yield csv_header()
            if first is None:
                return
            yield csv_line(first)
            async for record in records:
                yield csv_line(record)

        filename = csv_filename(datetime.now(UTC))
        return StreamingResponse(
            body(),
            media_type="text/csv; charset=utf-8",
            headers={
                **_PRIVATE,
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )


def _format_hint(request: Request, accept: str | None) -> Format:
    """The format an error should come in, even when the query string itself is bad."""
    wanted = (request.query_params.get("format") or "").lower()
    if is_format(wanted):
        return wanted
    return negotiate(accept)


def _error(fmt: Format, status: int, message: str) -> Response:
    if fmt == "json":
        return JSONResponse({"error": message}, status_code=status, headers=_PRIVATE)
    if fmt == "csv":
        return Response(
            message + "\n", status_code=status, media_type="text/plain", headers=_PRIVATE
        )
    title = _ERROR_TITLES.get(status, "Error")
    return HTMLResponse(
        render_error(status, title, message), status_code=status, headers=_PAGE_HEADERS
    )


def visitor_routes(deps: WebDeps) -> list[Route]:
    return VisitorPages(deps).routes()
