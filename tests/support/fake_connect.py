"""A fake Posit Connect server for tests and benchmarks.

It implements the slice of the API in /work/shared/connect-api.md with the behaviour the bot
depends on (tickets on every remote result, code 8 / 127 on create, error bodies with codes), plus
switches to inject the failures real deployments show: slow answers, outages, 5xx, 429, garbage
bodies and a create whose outcome the client cannot know.

Use it in-process (`httpx.ASGITransport(app=fake.app)`, base URL `fake.asgi_url`) or on a real
loopback port (`fake.start()` / `with FakeConnect() as fake:`, base URL `fake.url`). Handlers of the
real server run on a background thread with its own event loop, so every piece of shared state is
guarded by a lock and every switch is a plain attribute read at request time.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

DEFAULT_API_KEY = "fake-connect-api-key-0123456789"

# Codes as in Connect's API reference; the texts are representative only (clients must match on
# the code, and the bot does).
CODE_INTERNAL = 1
CODE_BAD_REQUEST = 3
CODE_NOT_FOUND = 4
ERROR_TABLE: dict[int, tuple[int, str]] = {
    1: (500, "An internal error occurred."),
    3: (400, "The request is invalid."),
    4: (404, "The requested object does not exist."),
    8: (409, "The requested username is already in use."),
    9: (404, "The requested user could not be found."),
    19: (403, "You do not have permission to perform this operation."),
    20: (403, "You do not have permission to perform this operation."),
    21: (403, "You do not have permission to perform this operation."),
    22: (403, "You do not have permission to perform this operation."),
    23: (403, "You do not have permission to change this user's role."),
    24: (401, "The request is not authenticated."),
    50: (403, "This user is locked."),
    83: (400, "The search returned too many results. Please be more specific."),
    119: (400, "The authentication provider does not support creating users from a ticket."),
    127: (400, "The requested temp_ticket is invalid."),
    132: (400, "This API is not supported by the current authentication provider."),
}

OUTAGE_MODES = (None, "refuse", "http_500", "http_503")
# commit_late: the PUT creates the account only after `commit_delay` seconds (a client with a
# shorter timeout has given up by then), and answers `answer_delay` seconds after that.
PUT_MODES = ("normal", "commit_then_hang", "commit_then_500", "fail_500", "hang", "commit_late")
_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_ZERO_TIME = "0001-01-01T00:00:00Z"
# Sleeps shorter than this are not worth making interruptible.
_PLAIN_SLEEP_MAX = 0.5
# Remote searches issue a ticket per result; a long benchmark must not grow without bound.
_MAX_TICKETS = 200_000

# A selector names requests: True (all), a method ("PUT"), a path ("v1/users/remote",
# "/__api__/v1/users/remote", fnmatch patterns like "v1/users/*"), "METHOD path", or a collection
# of those.
Selector = bool | str | Collection[str] | None


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str  # e.g. "/__api__/v1/users/remote", without the sub-path
    query: dict[str, str]
    json: Any  # the parsed body, or None (no body / not JSON)
    authorized: bool


@dataclass
class _Person:
    username: str
    first_name: str
    last_name: str
    email: str


@dataclass
class _Account:
    guid: str
    username: str
    first_name: str
    last_name: str
    email: str
    user_role: str
    locked: bool
    created_time: str
    updated_time: str
    active_time: str | None = None
    confirmed: bool = True

    def to_json(self, *, hide_email: bool = False) -> dict[str, Any]:
        return {
            "guid": self.guid,
            "email": "" if hide_email else self.email,
            "username": self.username,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "user_role": self.user_role,
            "created_time": self.created_time,
            "updated_time": self.updated_time,
            "active_time": self.active_time,
            "confirmed": self.confirmed,
            "locked": self.locked,
        }


@dataclass
class _FailRule:
    selector: Selector
    status: int
    code: int | None
    remaining: int
    retry_after: float | None
    body: str | None


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _now() -> str:
    return _timestamp(datetime.now(UTC), nanoseconds=time.time_ns() % 1000)


def _timestamp(when: datetime, *, nanoseconds: int = 0) -> str:
    # As real Connect writes them: up to nanosecond precision, which Python's parser refuses.
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}{nanoseconds:03d}Z"


def _norm_path(path: str) -> str:
    path = path.strip().strip("/")
    if path.startswith("__api__/"):
        path = path[len("__api__/") :]
    return path


def matches(selector: Selector, method: str, path: str) -> bool:
    """Whether a request (method, path) is named by `selector` (see `Selector`)."""
    if selector is None or selector is False:
        return False
    if selector is True:
        return True
    if not isinstance(selector, str):
        return any(matches(item, method, path) for item in selector)
    text = selector.strip()
    want_method: str | None = None
    want_path: str | None = None
    if " " in text:
        want_method, want_path = text.split(None, 1)
    elif text.upper() in _HTTP_METHODS:
        want_method = text
    else:
        want_path = text
    if want_method is not None and want_method.upper() != method.upper():
        return False
    return want_path is None or fnmatch.fnmatchcase(_norm_path(path), _norm_path(want_path))


def _new_ticket() -> str:
    # Real tickets are opaque base64 with `+` and `/`: make sure every fake one has both, so a
    # client that puts a ticket anywhere but a JSON body breaks in tests.
    while True:
        ticket = base64.b64encode(os.urandom(48)).decode("ascii")
        if "+" in ticket and "/" in ticket:
            return ticket


def _error(code: int, message: str | None = None, *, status: int | None = None) -> _Reply:
    table_status, table_message = ERROR_TABLE.get(code, (400, "Request failed."))
    return _Reply(
        status if status is not None else table_status,
        {"code": code, "error": message or table_message, "payload": None},
    )


class _ThreadServer(uvicorn.Server):
    """uvicorn polls its exit flag every 100 ms; poll faster so stop() (and outages) are quick."""

    async def main_loop(self) -> None:
        counter = 0
        await self.on_tick(counter)
        while not self.should_exit:
            await asyncio.sleep(0.01)
            counter += 1
            if counter % 100 == 0:  # on_tick refreshes the Date header every 10th call
                await self.on_tick(0)


# Every fake made in this process: the log guard collects their secrets.
INSTANCES: list[FakeConnect] = []


class FakeConnect:
    """In-memory Connect: a directory (what remote search sees) and local accounts."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        sub_path: str = "",
        version: str = "2024.08.0",
        authentication_name: str = "LDAP",
        default_user_role: str = "viewer",
        owner_username: str = "connect-bot",
        owner_role: str = "administrator",
        host: str = "127.0.0.1",
    ) -> None:
        self.api_key = api_key
        self.sub_path = "/" + sub_path.strip("/") if sub_path.strip("/") else ""
        self.version = version
        self.authentication_name = authentication_name
        self.default_user_role = default_user_role
        self.host = host

        # Fault switches: plain attributes, read on every request, settable at any time.
        self.latency: float | Mapping[str, float] = 0.0
        self.malformed: Selector = False
        self.missing_fields: Selector = False
        self.remote_search_error_code: int | None = None
        self.put_error_code: int | None = None
        self.hide_emails = False
        self.single_use_tickets = False
        self.hang_seconds = 30.0
        self.commit_delay = 3.0  # put_mode "commit_late"
        self.answer_delay = 0.0
        self._put_mode = "normal"
        self._outage: str | None = None

        self._lock = threading.RLock()
        self._directory: dict[str, _Person] = {}
        self._accounts: dict[str, _Account] = {}  # by guid
        self._guid_by_username: dict[str, str] = {}
        self._groups: dict[str, str] = {}  # guid -> name
        INSTANCES.append(self)
        self._tickets: dict[str, str] = {}  # ticket -> username
        # Every ticket ever handed out, so tests can check none of them leaked into a log.
        self.issued_tickets: set[str] = set()
        self._fail_rules: list[_FailRule] = []
        self._calls: list[RecordedCall] = []

        self._server_lock = threading.RLock()
        self._serving_wanted = False
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._port: int | None = None
        self._placeholder: socket.socket | None = None
        self._interrupt = threading.Event()

        self.owner_guid = self.add_local_user(
            owner_username, "Connect", "Bot", user_role=owner_role, in_directory=False
        )
        self._starlette = Starlette(routes=self._routes())

    # -- seeding ----------------------------------------------------------------------------

    def add_directory_user(
        self, username: str, first_name: str = "", last_name: str = "", email: str | None = None
    ) -> None:
        """Someone the directory (LDAP) knows; they have no Connect account yet."""
        email = f"{username}@example.com" if email is None else email
        with self._lock:
            self._directory[username] = _Person(username, first_name, last_name, email)

    def add_local_user(
        self,
        username: str,
        first_name: str = "",
        last_name: str = "",
        email: str | None = None,
        *,
        user_role: str = "viewer",
        locked: bool = False,
        in_directory: bool = True,
        guid: str | None = None,
        created_time: datetime | None = None,
    ) -> str:
        """An account that already exists in Connect (also in the directory, by default);
        created now unless `created_time` says when."""
        email = f"{username}@example.com" if email is None else email
        with self._lock:
            if self._account_by_username(username) is not None:
                raise ValueError(f"{username!r} already has an account")
            if in_directory and username not in self._directory:
                self._directory[username] = _Person(username, first_name, last_name, email)
            now = _now()
            account = _Account(
                guid=guid or str(uuid.uuid4()),
                username=username,
                first_name=first_name,
                last_name=last_name,
                email=email,
                user_role=user_role,
                locked=locked,
                created_time=now if created_time is None else _timestamp(created_time),
                updated_time=now,
                active_time=now,
            )
            self._store_account(account)
            return account.guid

    def add_group(self, name: str, guid: str | None = None) -> str:
        with self._lock:
            guid = guid or str(uuid.uuid4())
            self._groups[guid] = name
            return guid

    def get_local_user(self, username: str) -> dict[str, Any] | None:
        """The account's JSON (as Connect would send it), or None if there is none."""
        with self._lock:
            account = self._account_by_username(username)
            return None if account is None else account.to_json()

    @property
    def local_usernames(self) -> list[str]:
        with self._lock:
            return [a.username for a in self._accounts.values()]

    def issue_ticket(self, username: str) -> str:
        """A valid ticket for a directory user, as a remote search would hand out (not recorded)."""
        with self._lock:
            if username not in self._directory:
                raise KeyError(username)
            return self._issue_ticket_locked(username)

    def invalidate_tickets(self) -> None:
        """Every ticket issued so far becomes stale (code 127); later searches issue valid ones."""
        with self._lock:
            self._tickets.clear()

    # -- recorded calls ---------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """A snapshot of the requests received, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_for(self, method: str | None = None, path: str | None = None) -> list[RecordedCall]:
        selector = " ".join(part for part in (method, path) if part) or True
        with self._lock:
            return [c for c in self._calls if matches(selector, c.method, c.path)]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched, e.g. `count("PUT", "v1/users")` or `count("GET")`."""
        return len(self.calls_for(method, path))

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- fault switches ---------------------------------------------------------------------

    @property
    def put_mode(self) -> str:
        return self._put_mode

    @put_mode.setter
    def put_mode(self, mode: str) -> None:
        if mode not in PUT_MODES:
            raise ValueError(f"put_mode must be one of {PUT_MODES}")
        self._put_mode = mode

    @property
    def outage(self) -> str | None:
        return self._outage

    @outage.setter
    def outage(self, mode: str | None) -> None:
        """Switch outages on or off.

        "refuse" stops a running server (connections refused) and keeps its port reserved;
        leaving "refuse" starts it again on the same port. In-process, "refuse" makes the app
        raise httpx.ConnectError, which ASGITransport passes to the client as-is.
        """
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage must be one of {OUTAGE_MODES}")
        with self._server_lock:
            self._outage = mode
            if not self._serving_wanted:
                return
            if mode == "refuse":
                self._halt(keep_port=True)
            elif self._server is None:
                self._launch()

    def fail_next(
        self,
        path_or_method: Selector,
        status: int,
        code: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
        body: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` before doing anything else.

        The body is Connect's error JSON with `code` (null if None), or `body` verbatim as
        text/plain (a proxy's error page). `retry_after` sets the Retry-After header (seconds).
        """
        with self._lock:
            self._fail_rules.append(
                _FailRule(path_or_method, status, code, times, retry_after, body)
            )

    def reset_faults(self) -> None:
        with self._lock:
            self._fail_rules.clear()
        self.latency = 0.0
        self.malformed = False
        self.missing_fields = False
        self.remote_search_error_code = None
        self.put_error_code = None
        self.hide_emails = False
        self.single_use_tickets = False
        self.put_mode = "normal"
        self.outage = None

    # -- serving ----------------------------------------------------------------------------

    @property
    def app(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        return self._asgi

    @property
    def asgi_url(self) -> str:
        """A base URL to pair with `httpx.ASGITransport(app=fake.app)` (host is arbitrary)."""
        return f"http://connect.test{self.sub_path}/"

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeConnect has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The server URL as CONNECT_SERVER would hold it, e.g. http://127.0.0.1:54321/rsc/."""
        return f"http://{self.host}:{self.port}{self.sub_path}/"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        """Serve on a loopback port (the previous one after a stop(), else a free one)."""
        with self._server_lock:
            self._serving_wanted = True
            if self._server is not None:
                return self
            if self._outage != "refuse":
                self._launch()
            elif self._placeholder is None:  # started during a "refuse" outage: hold a port
                self._placeholder = self._bind(self._port or 0, listen=False)
                self._port = self._placeholder.getsockname()[1]
        return self

    def stop(self) -> None:
        with self._server_lock:
            self._serving_wanted = False
            self._halt(keep_port=False)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self, port: int, *, listen: bool) -> socket.socket:
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it every keep-alive response waits ~40 ms (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            # Lets a restart take the same port while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
            if listen:
                sock.listen(1024)
        except BaseException:
            sock.close()
            raise
        return sock

    def _launch(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        sock = self._bind(self._port or 0, listen=True)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        server = _ThreadServer(config)
        self._thread_error = None
        thread = threading.Thread(
            target=self._run_server,
            args=(server, sock),
            name=f"fake-connect-{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + 5
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._halt(keep_port=False)
                raise RuntimeError("fake Connect server did not start") from self._thread_error
            time.sleep(0.002)

    def _run_server(self, server: _ThreadServer, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced by _launch; a thread has nobody else to tell
            self._thread_error = exc
        finally:
            sock.close()

    def _halt(self, *, keep_port: bool) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            self._interrupt.set()  # hanging handlers answer now, so shutdown need not wait
            server.should_exit = True
            thread.join(timeout=5)
            self._interrupt.clear()
        if self._placeholder is not None and not keep_port:
            self._placeholder.close()
            self._placeholder = None
        if keep_port and self._placeholder is None and self._port is not None:
            # Bound but not listening: connections are refused, and nobody else takes the port.
            self._placeholder = self._bind(self._port, listen=False)

    # -- request handling -------------------------------------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._outage == "refuse":
                raise httpx.ConnectError("fake Connect is refusing connections")
            if self.sub_path:
                path = scope["path"]
                if not path.startswith(self.sub_path + "/"):
                    await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
                    return
                stripped = path[len(self.sub_path) :]
                scope = {**scope, "path": stripped, "raw_path": stripped.encode()}
        await self._starlette(scope, receive, send)

    def _routes(self) -> list[Route]:
        api = "/__api__"
        return [
            Route(f"{api}/v1/users/remote", self._wrap(self._remote_search), methods=["GET"]),
            Route(f"{api}/v1/users", self._wrap(self._list_users), methods=["GET"]),
            Route(f"{api}/v1/users", self._wrap(self._create_user), methods=["PUT"]),
            Route(f"{api}/v1/users/{{guid}}", self._wrap(self._get_user), methods=["GET"]),
            Route(f"{api}/v1/groups/{{guid}}", self._wrap(self._get_group), methods=["GET"]),
            Route(f"{api}/v1/user", self._wrap(self._current_user), methods=["GET"]),
            Route(f"{api}/server_settings", self._wrap(self._server_settings), methods=["GET"]),
        ]

    def _wrap(
        self, handler: Callable[[Request, Any], Awaitable[_Reply]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            method, path = request.method, request.scope["path"]
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            authorized = request.headers.get("authorization") == f"Key {self.api_key}"
            with self._lock:
                self._calls.append(
                    RecordedCall(method, path, dict(request.query_params), body, authorized)
                )
            await self._sleep(self._latency_for(method, path))
            reply = self._injected_failure(method, path)
            if reply is None and not authorized:
                reply = _error(24)
            if reply is None:
                reply = await handler(request, body)
            return self._render(reply, method, path)

        return endpoint

    def _latency_for(self, method: str, path: str) -> float:
        latency = self.latency
        if isinstance(latency, Mapping):
            return next((s for sel, s in latency.items() if matches(sel, method, path)), 0.0)
        return float(latency or 0.0)

    def _injected_failure(self, method: str, path: str) -> _Reply | None:
        outage = self._outage
        if outage == "http_500":
            return _error(CODE_INTERNAL)
        if outage == "http_503":
            return _Reply(503, "Service Unavailable")  # what a proxy in front says
        with self._lock:
            for rule in self._fail_rules:
                if rule.remaining > 0 and matches(rule.selector, method, path):
                    rule.remaining -= 1
                    break
            else:
                return None
            self._fail_rules = [r for r in self._fail_rules if r.remaining > 0]
        if rule.body is not None:
            reply = _Reply(rule.status, rule.body)
        else:
            message = ERROR_TABLE.get(rule.code, (0, "Injected failure."))[1]
            reply = _Reply(rule.status, {"code": rule.code, "error": message, "payload": None})
        if rule.retry_after is not None:
            value = rule.retry_after
            reply.headers["Retry-After"] = str(int(value)) if value == int(value) else str(value)
        return reply

    def _render(self, reply: _Reply, method: str, path: str) -> Response:
        body = reply.body
        ok = 200 <= reply.status < 300
        if ok and matches(self.malformed, method, path):
            return Response("<html><body>Please sign in</body></html>", 200, media_type="text/html")
        if ok and isinstance(body, dict) and matches(self.missing_fields, method, path):
            body = dict(body)
            body.pop("results" if "results" in body else "guid", None)
        if isinstance(body, str):
            return PlainTextResponse(body, reply.status, headers=reply.headers)
        return JSONResponse(body, reply.status, headers=reply.headers)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; False if cut short because the server is stopping."""
        if seconds <= 0:
            return True
        if seconds <= _PLAIN_SLEEP_MAX:
            await asyncio.sleep(seconds)
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._interrupt.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, 0.02))
        return False

    # -- endpoints --------------------------------------------------------------------------

    async def _remote_search(self, request: Request, _body: Any) -> _Reply:
        prefix = request.query_params.get("prefix")
        if not prefix:
            return _error(CODE_BAD_REQUEST, "The prefix parameter is required.")
        limit = _int_param(request, "limit", 20)
        if limit is None or not 1 <= limit <= 500:
            return _error(CODE_BAD_REQUEST, "limit must be between 1 and 500.")
        if self.remote_search_error_code is not None:
            return _error(self.remote_search_error_code)
        wanted = prefix.casefold()
        hide = self.hide_emails
        with self._lock:
            found = sorted(
                (
                    p
                    for p in self._directory.values()
                    if any(
                        f.casefold().startswith(wanted)
                        for f in (p.username, p.first_name, p.last_name)
                    )
                ),
                key=lambda p: p.username,
            )
            results = [self._remote_row(p, hide) for p in found[:limit]]
        return _Reply(200, {"results": results, "current_page": 1, "total": len(found)})

    def _remote_row(self, person: _Person, hide_email: bool) -> dict[str, Any]:
        account = self._account_by_username(person.username)
        row: dict[str, Any]
        if account is not None:
            row = account.to_json(hide_email=hide_email)
        else:
            # No account: Connect sends zero/null values here; clients must parse leniently.
            row = {
                "guid": None,
                "email": "" if hide_email else person.email,
                "username": person.username,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "user_role": None,
                "created_time": _ZERO_TIME,
                "updated_time": _ZERO_TIME,
                "active_time": None,
                "confirmed": False,
                "locked": False,
            }
        row["temp_ticket"] = self._issue_ticket_locked(person.username)
        return row

    async def _list_users(self, request: Request, _body: Any) -> _Reply:
        prefix = request.query_params.get("prefix")
        page_size = _int_param(request, "page_size", 20)
        page_number = _int_param(request, "page_number", 1)
        if page_size is None or not 1 <= page_size <= 500:
            return _error(CODE_BAD_REQUEST, "page_size must be between 1 and 500.")
        if page_number is None or page_number < 1:
            return _error(CODE_BAD_REQUEST, "page_number must be at least 1.")
        if prefix:
            page_number = 1  # as documented: a prefix search always returns the first page
        wanted = (prefix or "").casefold()
        hide = self.hide_emails
        with self._lock:
            found = sorted(
                (
                    a
                    for a in self._accounts.values()
                    if any(
                        f.casefold().startswith(wanted)
                        for f in (a.username, a.first_name, a.last_name)
                    )
                ),
                key=lambda a: a.username,
            )
            start = (page_number - 1) * page_size
            results = [a.to_json(hide_email=hide) for a in found[start : start + page_size]]
        return _Reply(200, {"results": results, "current_page": page_number, "total": len(found)})

    async def _create_user(self, _request: Request, body: Any) -> _Reply:
        if self.put_error_code is not None:
            return _error(self.put_error_code)
        mode = self._put_mode
        if mode == "fail_500":
            return _error(CODE_INTERNAL)
        if mode == "hang":
            await self._sleep(self.hang_seconds)
            return _Reply(503, "Service Unavailable")
        ticket = body.get("temp_ticket") if isinstance(body, dict) else None
        if not isinstance(ticket, str) or not ticket:
            return _error(CODE_BAD_REQUEST, "The request body must hold a temp_ticket.")
        if mode == "commit_late" and not await self._sleep(self.commit_delay):
            return _Reply(503, "Service Unavailable")
        with self._lock:
            username = self._tickets.get(ticket)
            if username is None or username not in self._directory:
                return _error(127)
            if self._account_by_username(username) is not None:
                return _error(8)
            person = self._directory[username]
            now = _now()
            account = _Account(
                guid=str(uuid.uuid4()),
                username=username,
                first_name=person.first_name,
                last_name=person.last_name,
                email=person.email,
                user_role=self.default_user_role,
                locked=False,
                created_time=now,
                updated_time=now,
            )
            self._store_account(account)
            if self.single_use_tickets:
                self._tickets.pop(ticket, None)
            created = account.to_json(hide_email=self.hide_emails)
        if mode == "commit_then_500":
            return _error(CODE_INTERNAL)
        if mode == "commit_then_hang" and not await self._sleep(self.hang_seconds):
            return _Reply(503, "Service Unavailable")
        if mode == "commit_late" and not await self._sleep(self.answer_delay):
            return _Reply(503, "Service Unavailable")
        return _Reply(200, created)

    async def _get_user(self, request: Request, _body: Any) -> _Reply:
        with self._lock:
            account = self._accounts.get(request.path_params["guid"])
            if account is None:
                return _error(CODE_NOT_FOUND)
            return _Reply(200, account.to_json(hide_email=self.hide_emails))

    async def _get_group(self, request: Request, _body: Any) -> _Reply:
        guid = request.path_params["guid"]
        with self._lock:
            name = self._groups.get(guid)
        if name is None:
            return _error(CODE_NOT_FOUND)
        return _Reply(200, {"guid": guid, "name": name, "owner_guid": None})

    async def _current_user(self, _request: Request, _body: Any) -> _Reply:
        with self._lock:
            return _Reply(200, self._accounts[self.owner_guid].to_json())

    async def _server_settings(self, _request: Request, _body: Any) -> _Reply:
        return _Reply(
            200,
            {
                "version": self.version,
                "authentication_name": self.authentication_name,
                "authentication": {"name": self.authentication_name, "notice": ""},
                "hide_email_addresses": self.hide_emails,
            },
        )

    # -- helpers (callers hold self._lock) ---------------------------------------------------

    def _account_by_username(self, username: str) -> _Account | None:
        guid = self._guid_by_username.get(username)
        return None if guid is None else self._accounts[guid]

    def _store_account(self, account: _Account) -> None:
        self._accounts[account.guid] = account
        self._guid_by_username[account.username] = account.guid

    def _issue_ticket_locked(self, username: str) -> str:
        if len(self._tickets) >= _MAX_TICKETS:  # oldest first, as an expiry would
            for old in list(self._tickets)[: _MAX_TICKETS // 10]:
                del self._tickets[old]
        ticket = _new_ticket()
        self._tickets[ticket] = username
        self.issued_tickets.add(ticket)
        return ticket


def _int_param(request: Request, name: str, default: int) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return None
