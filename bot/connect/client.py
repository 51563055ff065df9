"""A small async client for the slice of the Posit Connect API the bot uses.

Two rules shape this module:

* The API key and temp_tickets are credentials. No exception, repr or log line built here may
  contain them, and httpx exceptions (which carry the request, headers included) never escape:
  every failure is re-raised as one of our own errors, outside the `except` block so that no
  `__context__` chain leads back to the request.
* Reads are idempotent and retried; the create-from-ticket PUT is not. When the PUT times out its
  outcome is unknown, and only the caller (by looking the username up) can settle it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
)

from bot.connect.errors import (
    ConnectAPIError,
    ConnectError,
    ConnectProtocolError,
    ConnectUnavailable,
)
from bot.connect.models import (
    ConnectGroup,
    ConnectUser,
    EditedUser,
    GroupSearchResult,
    RemoteGroupResult,
    RemoteSearchResult,
    RemoteUser,
    ServerSettings,
    UserSearchResult,
)
from bot.workflow.ports import NO_METRICS, Metrics

logger = logging.getLogger(__name__)

MAX_LIMIT = 500
# A server asking for a long pause is honoured only this far: the caller (a person waiting in
# Slack) is better served by a quick "Connect is busy" than by a minute of silence.
MAX_RETRY_AFTER = 5.0
MAX_BACKOFF = 5.0
_MAX_MESSAGE_CHARS = 300

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# Printable ASCII without spaces: anything else would either be rejected by the HTTP layer with
# an error that quotes the header value, or is a copy/paste accident.
_KEY_RE = re.compile(r"^[\x21-\x7e]+$")

_ModelT = TypeVar("_ModelT", bound=BaseModel)


class _UserPage(BaseModel):
    """`GET /v1/users` answer; only `results` matters because a prefix search is one page."""

    results: list[ConnectUser]


class _UserTotal(BaseModel):
    """`GET /v1/users` answer read for its `total` only (a count: one row asked for)."""

    total: int


# `account_status` values `GET /v1/users` filters on (an administrator's key only).
ACCOUNT_STATUSES = ("licensed", "inactive", "locked")


class ConnectClient:
    """Typed access to Connect's users API with retries on reads and scrubbed errors."""

    def __init__(
        self,
        server_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        read_retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 50,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        api_key = api_key.strip()  # a trailing newline from a secrets file is common
        if not _KEY_RE.match(api_key):
            raise ValueError("api_key must be non-empty printable ASCII without spaces")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        if read_retries < 0:
            raise ValueError("read_retries must be >= 0")
        if backoff < 0:
            raise ValueError("backoff must be >= 0")
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")

        self.base_url: str = _api_base_url(server_url)
        self._api_key = api_key
        self._timeout = timeout
        self._read_retries = read_retries
        self._backoff = backoff
        self._metrics = metrics
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "Authorization": f"Key {api_key}",
                "Accept": "application/json",
                "User-Agent": "connect-user-bot",
            },
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=min(20, max_connections),
            ),
            transport=transport,
            # A redirect usually means CONNECT_SERVER is wrong (http vs https, missing sub-path);
            # following it could replay a PUT or send the key elsewhere. Report it instead.
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ConnectClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- remote directory -------------------------------------------------------------------

    async def search_remote(self, prefix: str, *, limit: int) -> RemoteSearchResult:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty string")
        _check_limit(limit)
        response = await self._get("v1/users/remote", params={"prefix": prefix, "limit": limit})
        return self._parse(response, RemoteSearchResult, "GET", "v1/users/remote")

    async def find_remote_user(self, username: str) -> RemoteUser | None:
        """The directory entry whose username is exactly `username` (prefix search + filter).

        Connect compares usernames case-sensitively (code 8), so the match is case-sensitive.
        """
        result = await self.search_remote(username, limit=MAX_LIMIT)
        return next((user for user in result.results if user.username == username), None)

    async def create_from_ticket(self, temp_ticket: str) -> ConnectUser:
        """Create the account a remote-search ticket stands for. Never retried here.

        A ConnectUnavailable from this method means the outcome is unknown.
        """
        if not isinstance(temp_ticket, str) or not temp_ticket:
            raise ValueError("temp_ticket must be a non-empty string")
        response = await self._send(
            "PUT",
            "v1/users",
            json={"temp_ticket": temp_ticket},
            secrets=(temp_ticket,),
        )
        return self._parse(response, ConnectUser, "PUT", "v1/users")

    # -- local accounts ---------------------------------------------------------------------

    async def find_user(self, username: str) -> ConnectUser | None:
        if not isinstance(username, str) or not username:
            raise ValueError("username must be a non-empty string")
        response = await self._get("v1/users", params={"prefix": username, "page_size": MAX_LIMIT})
        page = self._parse(response, _UserPage, "GET", "v1/users")
        return next((user for user in page.results if user.username == username), None)

    async def search_users(self, prefix: str, *, limit: int) -> UserSearchResult:
        """Accounts whose username, first or last name starts with `prefix` (Connect sorts them
        by similarity and answers the first page only)."""
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty string")
        _check_limit(limit)
        response = await self._get("v1/users", params={"prefix": prefix, "page_size": limit})
        return self._parse(response, UserSearchResult, "GET", "v1/users")

    async def count_users(self, *, account_status: str) -> int:
        """How many accounts have this status: `licensed` (unlocked and active within the
        licence's window: a seat each), `inactive` or `locked`. Needs an administrator's key."""
        if account_status not in ACCOUNT_STATUSES:
            raise ValueError(f"account_status must be one of {ACCOUNT_STATUSES}")
        response = await self._get(
            "v1/users", params={"account_status": account_status, "page_size": 1}
        )
        return self._parse(response, _UserTotal, "GET", "v1/users").total

    async def get_user(self, guid: str) -> ConnectUser:
        _check_guid(guid)
        response = await self._get(f"v1/users/{guid}", log_path="v1/users/{guid}")
        return self._parse(response, ConnectUser, "GET", "v1/users/{guid}")

    async def set_role(self, guid: str, role: str) -> EditedUser:
        """Give an account another role (an administrator's key). Never retried here: a
        ConnectUnavailable means the outcome is unknown (look at the account to know)."""
        _check_guid(guid)
        if role not in ("viewer", "publisher", "administrator"):
            raise ValueError("role must be viewer, publisher or administrator")
        response = await self._send(
            "PUT", f"v1/users/{guid}", json={"user_role": role}, log_path="v1/users/{guid}"
        )
        return self._parse(response, EditedUser, "PUT", "v1/users/{guid}")

    async def set_locked(self, guid: str, locked: bool) -> None:
        """Lock or unlock an account (an administrator's key; Connect answers 200 with an empty
        body). Never retried here: a ConnectUnavailable means the outcome is unknown (read the
        account's `locked` to know)."""
        _check_guid(guid)
        if not isinstance(locked, bool):
            raise ValueError("locked must be a bool")
        await self._send(
            "POST",
            f"v1/users/{guid}/lock",
            json={"locked": locked},
            log_path="v1/users/{guid}/lock",
        )

    async def list_users(
        self, *, account_status: str, page_number: int, page_size: int = MAX_LIMIT
    ) -> UserSearchResult:
        """One page of the accounts with this status (an administrator's key)."""
        if account_status not in ACCOUNT_STATUSES:
            raise ValueError(f"account_status must be one of {ACCOUNT_STATUSES}")
        _check_limit(page_size)
        if isinstance(page_number, bool) or not isinstance(page_number, int) or page_number < 1:
            raise ValueError("page_number must be a positive integer")
        response = await self._get(
            "v1/users",
            params={
                "account_status": account_status,
                "page_number": page_number,
                "page_size": page_size,
            },
        )
        return self._parse(response, UserSearchResult, "GET", "v1/users")

    async def get_group(self, guid: str) -> ConnectGroup:
        _check_guid(guid)
        response = await self._get(f"v1/groups/{guid}", log_path="v1/groups/{guid}")
        return self._parse(response, ConnectGroup, "GET", "v1/groups/{guid}")

    # -- groups -----------------------------------------------------------------------------

    async def search_remote_groups(self, prefix: str, *, limit: int) -> RemoteGroupResult:
        """Directory groups (LDAP) whose name matches `prefix`, each with a ticket."""
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty string")
        _check_limit(limit)
        response = await self._get("v1/groups/remote", params={"prefix": prefix, "limit": limit})
        return self._parse(response, RemoteGroupResult, "GET", "v1/groups/remote")

    async def create_group_from_ticket(self, temp_ticket: str) -> ConnectGroup:
        """Bring in the directory group a ticket stands for. Never retried here: a
        ConnectUnavailable means the outcome is unknown (look the group up by name)."""
        if not isinstance(temp_ticket, str) or not temp_ticket:
            raise ValueError("temp_ticket must be a non-empty string")
        response = await self._send(
            "PUT", "v1/groups", json={"temp_ticket": temp_ticket}, secrets=(temp_ticket,)
        )
        return self._parse(response, ConnectGroup, "PUT", "v1/groups")

    async def search_groups(self, prefix: str, *, limit: int) -> GroupSearchResult:
        """Connect groups whose name matches `prefix` ("" lists the first page)."""
        _check_limit(limit)
        params: dict[str, Any] = {"page_size": limit}
        if prefix:
            params["prefix"] = prefix
        response = await self._get("v1/groups", params=params)
        return self._parse(response, GroupSearchResult, "GET", "v1/groups")

    async def add_group_member(self, group_guid: str, user_guid: str) -> None:
        """Add an account to a group (204). Not retried here: a ConnectUnavailable means the
        outcome is unknown; sending it again is safe (code 16: a member already)."""
        _check_guid(group_guid)
        _check_guid(user_guid)
        await self._send(
            "POST",
            f"v1/groups/{group_guid}/members",
            json={"user_guid": user_guid},
            log_path="v1/groups/{guid}/members",
        )

    async def current_user(self) -> ConnectUser:
        response = await self._get("v1/user")
        return self._parse(response, ConnectUser, "GET", "v1/user")

    async def server_settings(self) -> ServerSettings:
        response = await self._get("server_settings")
        return self._parse(response, ServerSettings, "GET", "server_settings")

    # -- plumbing ---------------------------------------------------------------------------

    async def _get(
        self, path: str, *, params: dict[str, Any] | None = None, log_path: str | None = None
    ) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + self._read_retries),
            wait=self._wait,
            retry=retry_if_exception_type(ConnectUnavailable),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send("GET", path, params=params, log_path=log_path)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ConnectUnavailable) and exc.retry_after is not None:
            return min(float(exc.retry_after), MAX_RETRY_AFTER)
        # Exponential with jitter, so many waiting requests do not come back in lockstep.
        base = self._backoff * 2.0 ** (state.attempt_number - 1)
        return min(base * (0.5 + random.random()), MAX_BACKOFF)  # noqa: S311

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        secrets: tuple[str, ...] = (),
        log_path: str | None = None,
    ) -> httpx.Response:
        log_path = log_path or path
        started = time.perf_counter()
        error: ConnectError | None = None
        response: httpx.Response | None = None
        try:
            # httpx's timeouts are per phase; this bounds the whole attempt, and also applies
            # to transports that ignore httpx timeouts (ASGITransport in tests).
            async with asyncio.timeout(self._timeout):
                response = await self._http.request(method, path, params=params, json=json)
        except (TimeoutError, httpx.TimeoutException):
            error = ConnectUnavailable(
                f"Connect did not answer {method} {log_path} within {self._timeout:g}s",
                reason="timeout",
            )
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            error = ConnectUnavailable(
                f"could not reach Connect for {method} {log_path} ({type(exc).__name__})",
                reason="connection",
            )
        except httpx.HTTPError as exc:
            error = ConnectError(f"{method} {log_path} failed ({type(exc).__name__})")
        elapsed = time.perf_counter() - started
        elapsed_ms = elapsed * 1000
        if error is not None:
            outcome = error.reason if isinstance(error, ConnectUnavailable) else "error"
            # Counted under the path's template (log_path), never the path with a GUID in it.
            self._metrics.connect_call(method, log_path, outcome, "", elapsed)
            # Raised here, outside the except block, so no __context__ points at httpx's
            # exception (and through it at the request headers).
            logger.debug("%s %s failed (%s) in %.0f ms", method, log_path, error, elapsed_ms)
            raise error
        assert response is not None
        logger.debug("%s %s -> %d in %.0f ms", method, log_path, response.status_code, elapsed_ms)
        error = self._status_error(response, method, log_path, secrets)
        code = error.code if isinstance(error, ConnectAPIError) else None
        self._metrics.connect_call(
            method, log_path, str(response.status_code), "" if code is None else str(code), elapsed
        )
        if error is not None:
            raise error
        return response

    def _status_error(
        self, response: httpx.Response, method: str, path: str, secrets: tuple[str, ...]
    ) -> ConnectError | None:
        status = response.status_code
        if 200 <= status < 300:
            return None
        if status == 429:
            return ConnectUnavailable(
                f"Connect is rate limiting {method} {path} (429)",
                reason="rate_limited",
                status=status,
                retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 500:
            return ConnectUnavailable(
                f"Connect answered {status} to {method} {path}",
                reason="server_error",
                status=status,
                retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
            )
        if 300 <= status < 400:
            return ConnectProtocolError(
                f"Connect redirected {method} {path} ({status}); check that CONNECT_SERVER is "
                "the final address (scheme, host and sub-path)"
            )
        if status < 200:
            return ConnectProtocolError(f"unexpected status {status} for {method} {path}")
        code, message = _error_body(response)
        return ConnectAPIError(status, code, self._scrub(message, secrets))

    def _scrub(self, text: str, secrets: tuple[str, ...]) -> str:
        """Server text is quoted in our errors: make sure it cannot echo a credential."""
        for secret in (self._api_key, *secrets):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text[:_MAX_MESSAGE_CHARS]

    @staticmethod
    def _parse(response: httpx.Response, model: type[_ModelT], method: str, path: str) -> _ModelT:
        try:
            data = response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
            data = _NOT_JSON
        # Raised out here so the decoder's error (which quotes the body) is not chained.
        if data is _NOT_JSON:
            raise ConnectProtocolError(
                f"Connect answered {response.status_code} to {method} {path} with a body that "
                "is not JSON"
            )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # pydantic's own text quotes the input (which may hold tickets or personal data):
            # describe only where and what kind of problem.
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            detail = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['type']}"
                for err in errors[:3]
            )
        raise ConnectProtocolError(
            f"Connect's answer to {method} {path} is not what the bot expects ({detail})"
        )


_NOT_JSON = object()


def _api_base_url(server_url: str) -> str:
    try:
        url = httpx.URL(server_url.strip())
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError("server_url must be an absolute http(s) URL")
    if url.userinfo:
        raise ValueError("server_url must not contain credentials")
    if url.query or url.fragment:
        raise ValueError("server_url must not contain a query or fragment")
    base = str(url.copy_with(query=None, fragment=None)).rstrip("/")
    # Tolerate a CONNECT_SERVER that already names the API root.
    if base.endswith("/__api__"):
        base = base[: -len("/__api__")]
    return base + "/__api__/"


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer between 1 and {MAX_LIMIT}")


def is_guid(value: object) -> bool:
    """Whether `value` has the shape of a Connect GUID (a UUID), so it may go into a path."""
    return isinstance(value, str) and _UUID_RE.match(value) is not None


def _check_guid(guid: str) -> None:
    if not is_guid(guid):
        raise ValueError("guid must be a UUID (8-4-4-4-12 hex digits)")


def _error_body(response: httpx.Response) -> tuple[int | None, str]:
    fallback = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return None, fallback
    if not isinstance(body, dict):
        return None, fallback
    code = body.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        code = None
    message = body.get("error")
    return code, message if isinstance(message, str) and message else fallback


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    sleep = state.next_action.sleep if state.next_action else 0.0
    logger.debug(
        "retrying after attempt %d failed (%s); sleeping %.2fs",
        state.attempt_number,
        getattr(exc, "reason", type(exc).__name__),
        sleep,
    )
