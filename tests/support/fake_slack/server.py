"""A fake Slack Web API (and response_url endpoint) for tests and benchmarks.

The server is an aiohttp app running on a free loopback port, in a background thread with its own
event loop, so it can serve a bot under test that runs in pytest's loop (or any other thread).

    with FakeSlack() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert fake.count("chat.postMessage") == 1

Every Web API method answers GET and POST, with arguments from the query string, a form body or
a JSON body, and every call is recorded as a :class:`SlackCall`. The fake validates a little,
like real Slack (block limits, modal limits, ephemeral messages that ``chat.update`` cannot edit,
trigger ids that can be used once, response_urls usable 5 times), so a bot cannot pass its own
tests and then fail against Slack.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.support import blockkit

__all__ = ["FakeSlack", "ResponsePost", "SlackCall"]

Handler = Callable[[dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any]]"]

RESPONSE_URL_MAX_USES = 5
_JSON_ARGS = ("blocks", "attachments", "view", "metadata", "user_auth_blocks")
_BASE_TS_MICROS = 1_700_000_000_000_100  # first ts handed out: "1700000000.000100"


@dataclass(frozen=True)
class SlackCall:
    """One Web API call the fake received.

    ``args`` merges the query string and the body (form or JSON); ``blocks``, ``attachments``,
    ``view`` and ``metadata`` sent as JSON strings (form bodies) are decoded to objects. The token
    (``Authorization: Bearer`` or a ``token`` argument) is in ``token``, not in ``args``.
    """

    method: str
    args: dict[str, Any]
    token: str | None
    http_method: str
    time: float
    status: int = 200
    response: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return bool(self.status == 200 and self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url, with the status the fake answered."""

    url: str
    body: dict[str, Any]
    status: int
    answer: str
    time: float

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Fault:
    error: str
    status: int
    remaining: int | None  # None: until clear_faults()
    retry_after: int | None


@dataclass
class _ResponseUrl:
    channel: str | None = None
    message_ts: str | None = None


# Every fake made in this process: the log guard collects their response_urls.
INSTANCES: list[FakeSlack] = []


class FakeSlack:
    """A fake Slack Web API server. See the module docstring.

    Attributes you may set directly:
      - ``latency``: ``{method: seconds}`` delay before answering (``"*"`` applies to every method).
      - ``members_page_size``: cap on ``conversations.members`` page size (``None``: the caller's
        ``limit``, default 100, max 1000).
      - ``strict_messages``: ``chat.update``/``chat.delete``/``chat.getPermalink`` of a ts the fake
        never posted answers ``message_not_found`` (default False: only ephemeral ts, and a known ts
        in the wrong channel, are rejected).
      - ``enforce_single_use_triggers``: a second ``views.open``/``views.push`` with the same
        ``trigger_id`` answers ``exchanged_trigger_id`` (default True, as Slack does).
      - ``response_url_max_uses``: accepted posts per response_url before ``404 used_url``
        (default 5, as Slack does; ``None`` for no limit).
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        team_name: str = "Test",
        team_domain: str = "test",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0APP",
        token: str | None = None,
        members_page_size: int | None = None,
    ) -> None:
        """``token``: if given, calls with another token answer ``invalid_auth``.

        ``enterprise_id`` (an attribute you may set): the workspace belongs to that Enterprise
        Grid organisation; ``auth.test`` answers it."""
        INSTANCES.append(self)
        self.team_id = team_id
        self.enterprise_id: str | None = None
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.expected_token = token
        self.members_page_size = members_page_size
        self.latency: dict[str, float] = {}
        self.strict_messages = False
        self.enforce_single_use_triggers = True
        self.response_url_max_uses: int | None = RESPONSE_URL_MAX_USES

        self._lock = threading.RLock()
        self._calls: list[SlackCall] = []
        self._posts: list[ResponsePost] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._handlers: dict[str, Handler] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._ephemeral_ts: set[str] = set()
        self._views: dict[str, dict[str, Any]] = {}
        self._home_views: dict[str, str] = {}  # user id -> view id of their published Home tab
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._response_status: dict[str | None, int] = {}
        self._ts_counter = 0
        self._view_counter = 0

        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_acks: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

        self.add_user(bot_user_id, is_bot=True, name="connect-bot", real_name="Connect Bot")

    # -----------------------------------------------------------------------------------------
    # lifecycle
    # -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/`` — pass as ``base_url`` to ``AsyncWebClient``."""
        return f"{self.base_url}/api/"

    def start(self) -> FakeSlack:
        if self._thread is not None:
            raise RuntimeError("FakeSlack already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                try:
                    if self._runner is not None:
                        loop.run_until_complete(self._runner.cleanup())
                    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                    for task in pending:
                        task.cancel()
                    if pending:
                        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()

        thread = threading.Thread(target=run, name=f"FakeSlack:{port}", daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("FakeSlack did not start within 10 s")
        if failure:
            thread.join(1)
            sock.close()
            raise RuntimeError("FakeSlack failed to start") from failure[0]
        self._loop, self._thread, self._port = loop, thread, port
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = self._runner = None
        self._port = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> FakeSlack:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_route("POST", "/response/{rid}", self._handle_response_url)
        app.router.add_route("GET", "/socket", self._handle_socket)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2, handle_signals=False)
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner

    # -----------------------------------------------------------------------------------------
    # Socket Mode: apps.connections.open hands out ws://…/socket; envelopes go down it and the
    # app's acks come back (https://api.slack.com/apis/socket-mode)
    # -----------------------------------------------------------------------------------------
    def _apps_connections_open(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)  # answers the SDK's pings with pongs
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": self.app_id}}
        )
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                with self._lock:
                    self._socket_acks.append(json.loads(message.data))
        self._sockets.remove(ws)
        return ws

    @property
    def socket_connections(self) -> int:
        return len(self._sockets)

    async def socket_send(self, envelope: dict[str, Any]) -> None:
        """Push an envelope to every connected Socket Mode client (from any thread or loop)."""
        if self._loop is None:
            raise RuntimeError("FakeSlack is not started")

        async def send() -> None:
            for ws in list(self._sockets):
                await ws.send_json(envelope)

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(send(), self._loop))

    async def wait_for_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for ack in self._socket_acks:
                    if ack.get("envelope_id") == envelope_id:
                        return ack
            await asyncio.sleep(0.01)
        raise AssertionError(f"no Socket Mode ack for envelope {envelope_id}")

    # -----------------------------------------------------------------------------------------
    # records
    # -----------------------------------------------------------------------------------------
    @property
    def calls(self) -> list[SlackCall]:
        """A copy of every Web API call, in order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def count(self, method: str) -> int:
        return len(self.calls_to(method))

    def last(self, method: str) -> SlackCall:
        calls = self.calls_to(method)
        if not calls:
            raise AssertionError(f"no call to {method}; calls seen:\n{self._describe_calls()}")
        return calls[-1]

    def reset(self, *, config: bool = False) -> None:
        """Forget recorded calls and response_url posts.

        With ``config=True`` also forget users, channels, messages, views, used triggers, faults,
        handlers, latency and response_url statuses (the bot user is re-added).
        """
        with self._lock:
            self._calls.clear()
            self._posts.clear()
            if config:
                self._faults.clear()
                self._handlers.clear()
                self._users.clear()
                self._channels.clear()
                self._messages.clear()
                self._ephemeral_ts.clear()
                self._views.clear()
                self._home_views.clear()
                self._used_triggers.clear()
                self._response_urls.clear()
                self._response_status.clear()
                self.latency.clear()
        if config:
            self.add_user(
                self.bot_user_id, is_bot=True, name="connect-bot", real_name="Connect Bot"
            )

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        predicate: Callable[[SlackCall], bool] | None = None,
    ) -> list[SlackCall]:
        """Wait (from any event loop) until ``count`` calls to ``method`` match ``predicate``.

        Returns every matching call so far. Raises AssertionError listing the calls seen on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            matched = [c for c in self.calls_to(method) if predicate is None or predicate(c)]
            if len(matched) >= count:
                return matched
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {count} call(s) to {method}"
                    f"{' matching predicate' if predicate else ''}; {len(matched)} matched. "
                    f"Calls seen:\n{self._describe_calls()}"
                )
            await asyncio.sleep(0.01)

    def _describe_calls(self) -> str:
        with self._lock:
            calls = list(self._calls)
        if not calls:
            return "  (none)"
        lines = []
        for c in calls:
            outcome = "ok" if c.ok else f"{c.status} {c.error}"
            args = json.dumps(c.args, default=str, ensure_ascii=False)
            if len(args) > 300:
                args = args[:300] + "…"
            lines.append(f"  {c.http_method} {c.method} -> {outcome} {args}")
        return "\n".join(lines)

    # -----------------------------------------------------------------------------------------
    # configuration
    # -----------------------------------------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        *,
        team_id: str = "T0001",
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        deleted: bool = False,
        is_bot: bool = False,
        email: str | None = None,
        real_name: str | None = None,
        name: str | None = None,
        enterprise_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add (or replace) a user for ``users.info`` / ``users.lookupByEmail``.

        A user whose ``team_id`` differs from the fake's team (and who is not in the same
        ``enterprise_id``) is a Slack Connect stranger: ``is_stranger: true``. ``extra`` keys are
        merged into the top level of the user object. Returns the user object.
        """
        name = name or user_id.lower()
        real_name = real_name if real_name is not None else name.replace(".", " ").title()
        profile: dict[str, Any] = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": name,
            "display_name_normalized": name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": "g0000000000",
            "first_name": real_name.split(" ")[0] if real_name else "",
            "last_name": " ".join(real_name.split(" ")[1:]) if real_name else "",
            "image_24": "https://secure.gravatar.com/avatar/0.jpg?s=24",
            "image_72": "https://secure.gravatar.com/avatar/0.jpg?s=72",
            "team": team_id,
        }
        if email is not None:
            profile["email"] = email
        if is_bot:
            profile["bot_id"] = self.bot_id if user_id == self.bot_user_id else f"B{user_id}"
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": team_id,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "is_email_confirmed": email is not None,
            "who_can_share_contact_card": "EVERYONE",
        }
        if enterprise_id is not None:
            user["enterprise_user"] = {
                "id": user_id,
                "enterprise_id": enterprise_id,
                "enterprise_name": "Test Enterprise",
                "is_admin": False,
                "is_owner": False,
                "is_primary_owner": False,
                "teams": [team_id],
            }
        if team_id != self.team_id and (
            enterprise_id is None or enterprise_id != self._own_enterprise_id()
        ):
            user["is_stranger"] = True
        user.update(extra)
        with self._lock:
            self._users[user_id] = user
        return user

    def _own_enterprise_id(self) -> str | None:
        bot = self._users.get(self.bot_user_id)
        if bot and "enterprise_user" in bot:
            return bot["enterprise_user"]["enterprise_id"]
        return self.enterprise_id

    def remove_user(self, user_id: str) -> None:
        with self._lock:
            self._users.pop(user_id, None)

    def add_channel(
        self,
        channel: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        members: list[str] | None = None,
        is_member: bool = True,
        is_ext_shared: bool = False,
        is_pending_ext_shared: bool = False,
    ) -> None:
        """Declare a channel (``conversations.info``); ``members`` for ``conversations.members``.

        ``is_ext_shared``: shared with another organisation through Slack Connect
        (``is_shared`` too, as Slack reports it); ``is_pending_ext_shared``: invited, not yet
        accepted."""
        with self._lock:
            existing = self._channels.get(channel, {})
            self._channels[channel] = {
                "name": name or existing.get("name") or channel.lower(),
                "is_private": is_private,
                "members": list(members if members is not None else existing.get("members", [])),
                "is_member": is_member,
                "is_ext_shared": is_ext_shared,
                "is_pending_ext_shared": is_pending_ext_shared,
            }

    def set_channel_members(self, channel: str, members: list[str]) -> None:
        with self._lock:
            info = self._channels.setdefault(
                channel, {"name": channel.lower(), "is_private": False, "is_member": True}
            )
            info["members"] = list(members)
            info["is_member"] = True

    def set_channel_not_member(self, channel: str) -> None:
        """The bot is not in ``channel``: ``conversations.members``/``chat.postMessage`` answer
        ``not_in_channel``."""
        with self._lock:
            info = self._channels.setdefault(
                channel, {"name": channel.lower(), "is_private": False, "members": []}
            )
            info["is_member"] = False

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        times: int | None = 1,
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail (``times=None``: until cleared).

        ``status=429`` answers HTTP 429 with ``Retry-After`` (default 1) and ``ratelimited``;
        ``status=5xx`` answers that status with ``internal_error``; ``status=200`` with ``error``
        answers Slack's API-level ``{"ok": false, "error": error}``. Faults queue in order.
        """
        if error is None:
            error = {429: "ratelimited"}.get(status, "internal_error" if status >= 500 else None)
            if error is None:
                error = "fatal_error"
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.setdefault(method, []).append(
                _Fault(error=error, status=status, remaining=times, retry_after=retry_after)
            )

    def clear_faults(self, method: str | None = None) -> None:
        with self._lock:
            if method is None:
                self._faults.clear()
            else:
                self._faults.pop(method, None)

    def set_handler(self, method: str, fn: Handler | None) -> None:
        """Answer ``method`` with ``fn(args)`` (sync or async, returns the JSON dict), skipping the
        fake's defaults and validation. ``None`` removes the override."""
        with self._lock:
            if fn is None:
                self._handlers.pop(method, None)
            else:
                self._handlers[method] = fn

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay answers to ``method`` (``"*"`` for all methods)."""
        self.latency[method] = seconds

    # -----------------------------------------------------------------------------------------
    # state the fake keeps
    # -----------------------------------------------------------------------------------------
    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current state of a message the bot posted (after updates / response_url edits)."""
        with self._lock:
            msg = self._messages.get((channel, ts))
            return None if msg is None else dict(msg)

    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages posted to ``channel`` and not deleted, in order."""
        with self._lock:
            return [
                dict(m)
                for (ch, _), m in self._messages.items()
                if ch == channel and not m.get("deleted")
            ]

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            v = self._views.get(view_id)
            return None if v is None else dict(v)

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab last published for ``user_id`` with ``views.publish``, if any."""
        with self._lock:
            view_id = self._home_views.get(user_id)
            v = None if view_id is None else self._views.get(view_id)
            return None if v is None else dict(v)

    # -----------------------------------------------------------------------------------------
    # response_url
    # -----------------------------------------------------------------------------------------
    def new_response_url(self, *, channel: str | None = None, message_ts: str | None = None) -> str:
        """A fresh response_url on this server.

        Tie it to a message (``channel``, ``message_ts``) to have ``replace_original`` /
        ``delete_original`` posts edit that message's state in :meth:`message`.
        """
        rid = secrets.token_hex(12)
        url = f"{self.base_url}/response/{rid}"
        with self._lock:
            self._response_urls[url] = _ResponseUrl(channel=channel, message_ts=message_ts)
        return url

    @property
    def issued_response_urls(self) -> list[str]:
        """Every response_url handed out (each is a credential for its message)."""
        with self._lock:
            return list(self._response_urls)

    def set_response_url_status(self, url: str | None, status: int | None) -> None:
        """Answer posts to ``url`` (``None``: every response_url) with ``status`` (e.g. 404 for an
        expired URL). ``status=None`` removes the override."""
        with self._lock:
            if status is None:
                self._response_status.pop(url, None)
            else:
                self._response_status[url] = status

    def response_posts(self, url: str | None = None) -> list[ResponsePost]:
        """Every POST to a response_url (``url=None``: all URLs), accepted or not, in order."""
        with self._lock:
            return [p for p in self._posts if url is None or p.url == url]

    def responses(self, url: str | None = None, *, include_rejected: bool = False) -> list[dict]:
        """JSON bodies posted to a response_url and accepted (2xx), in order.

        Rejected posts (404 expired/used, 400 invalid_blocks) are left out unless
        ``include_rejected=True``: Slack would not have shown them.
        """
        return [p.body for p in self.response_posts(url) if include_rejected or p.accepted]

    async def wait_for_response(
        self,
        url: str | None,
        count: int = 1,
        timeout: float = 5.0,
        *,
        include_rejected: bool = False,
    ) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            bodies = self.responses(url, include_rejected=include_rejected)
            if len(bodies) >= count:
                return bodies
            if time.monotonic() >= deadline:
                seen = "\n".join(
                    f"  {p.url} -> {p.status} {p.answer} {json.dumps(p.body, default=str)[:300]}"
                    for p in self.response_posts()
                )
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {count} accepted post(s) to "
                    f"{url or 'any response_url'}; got {len(bodies)}. Posts seen:\n"
                    f"{seen or '  (none)'}\nAPI calls seen:\n{self._describe_calls()}"
                )
            await asyncio.sleep(0.01)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        url = f"{self.base_url}/response/{request.match_info['rid']}"
        raw = await request.read()
        body: Any
        try:
            if request.content_type == "application/x-www-form-urlencoded":
                form = await request.post()
                body = json.loads(str(form.get("payload", "")))
            else:
                body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        status, answer = 200, "ok"
        if not isinstance(body, dict):
            status, answer = 400, "invalid_payload"
            body = {"_raw": raw.decode("utf-8", "replace")}
        with self._lock:
            override = self._response_status.get(url, self._response_status.get(None))
            used = sum(1 for p in self._posts if p.url == url and p.accepted)
            link = self._response_urls.get(url)
        if status == 200 and override is not None and override != 200:
            status = override
            answer = {404: "expired_url", 410: "expired_url", 500: "internal_error"}.get(
                override, "error"
            )
        elif (
            status == 200
            and self.response_url_max_uses is not None
            and used >= self.response_url_max_uses
        ):
            status, answer = 404, "used_url"
        elif status == 200:
            problem = blockkit.response_payload_problem(body)
            if problem is not None:
                status, answer = 400, problem
        post = ResponsePost(url=url, body=body, status=status, answer=answer, time=time.time())
        with self._lock:
            self._posts.append(post)
            if post.accepted and link and link.channel and link.message_ts:
                msg = self._messages.get((link.channel, link.message_ts))
                if msg is not None:
                    if body.get("delete_original"):
                        msg["deleted"] = True
                    elif body.get("replace_original"):
                        msg["text"] = body.get("text", "")
                        msg["blocks"] = body.get("blocks", [])
                        msg["edited"] = True
        return web.Response(status=status, text=answer)

    # -----------------------------------------------------------------------------------------
    # Web API
    # -----------------------------------------------------------------------------------------
    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = {k: request.query.getone(k) for k in request.query}
        token: str | None = None
        parse_error: str | None = None
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            try:
                if ctype == "application/json":
                    data = await request.json()
                    if isinstance(data, dict):
                        args.update(data)
                    else:
                        parse_error = "invalid_json"
                elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                    form = await request.post()
                    for k in form:
                        v = form.getone(k)
                        args[k] = (
                            v if isinstance(v, str) else f"<file {getattr(v, 'filename', '')}>"
                        )
                else:
                    await request.read()
            except (ValueError, UnicodeDecodeError):
                parse_error = "invalid_json"
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        body_token = args.pop("token", None)
        if token is None and body_token is not None:
            token = str(body_token)
        for key in _JSON_ARGS:
            value = args.get(key)
            if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(value)

        delay = self.latency.get(method, self.latency.get("*", 0.0))
        if delay:
            await asyncio.sleep(delay)

        status, headers = 200, {}
        with self._lock:
            fault = self._take_fault(method)
            handler = self._handlers.get(method)
        if fault is not None:
            status = fault.status
            result: dict[str, Any] = {"ok": False, "error": fault.error}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
        elif parse_error is not None:
            result = {"ok": False, "error": parse_error}
        elif token is None:
            result = {"ok": False, "error": "not_authed"}
        elif self.expected_token is not None and token != self.expected_token:
            result = {"ok": False, "error": "invalid_auth"}
        else:
            try:
                if handler is not None:
                    out = handler(dict(args))
                    if inspect.isawaitable(out):
                        out = await out
                    result = out
                else:
                    result = self._dispatch(method, args)
            except Exception as exc:  # a broken handler: record it and answer 500
                status = 500
                result = {"ok": False, "error": f"fake_slack_error: {exc!r}"}

        call = SlackCall(
            method=method,
            args=args,
            token=token,
            http_method=request.method,
            time=time.time(),
            status=status,
            response=result,
        )
        with self._lock:
            self._calls.append(call)
        return web.json_response(result, status=status, headers=headers)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
        return fault

    def _dispatch(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        impl = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.open": self._conversations_open,
            "conversations.members": self._conversations_members,
            "conversations.info": self._conversations_info,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "apps.connections.open": self._apps_connections_open,
        }.get(method)
        if impl is None:
            return {"ok": True}
        with self._lock:
            return impl(method, args)

    # -- helpers ------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = _BASE_TS_MICROS + (self._ts_counter - 1) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _resolve_channel(self, channel: str) -> str:
        # Posting to a user id posts to the DM with that user, and Slack answers the D… id.
        if channel[:1] in ("U", "W"):
            return "D" + channel
        return channel

    def _message_object(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": args.get("text", ""),
            "ts": ts,
        }
        if args.get("blocks") is not None:
            msg["blocks"] = args["blocks"]
        if args.get("attachments") is not None:
            msg["attachments"] = args["attachments"]
        if args.get("thread_ts"):
            msg["thread_ts"] = args["thread_ts"]
        if args.get("metadata") is not None:
            msg["metadata"] = args["metadata"]
        return msg

    # -- methods ------------------------------------------------------------------------------
    def _auth_test(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self._users.get(self.bot_user_id, {}).get("name", "bot"),
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
        }

    def _chat_post_message(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        channel = self._resolve_channel(str(channel))
        info = self._channels.get(channel)
        if info is not None and info.get("is_member") is False:
            return {"ok": False, "error": "not_in_channel"}
        problem = blockkit.message_problem(args)
        if problem is not None:
            return problem
        ts = self._next_ts()
        msg = self._message_object(args, ts)
        self._messages[(channel, ts)] = dict(msg, channel=channel)
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def _chat_post_ephemeral(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel, user = args.get("channel"), args.get("user")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        info = self._channels.get(str(channel))
        if info is not None and info.get("is_member") is False:
            return {"ok": False, "error": "not_in_channel"}
        if info is not None and info.get("members") and user not in info["members"]:
            return {"ok": False, "error": "user_not_in_channel"}
        problem = blockkit.message_problem(args)
        if problem is not None:
            return problem
        ts = self._next_ts()
        self._ephemeral_ts.add(ts)
        return {"ok": True, "message_ts": ts}

    def _known_message_problem(self, channel: str, ts: str) -> dict[str, Any] | None:
        if ts in self._ephemeral_ts:
            return {"ok": False, "error": "message_not_found"}
        if (channel, ts) in self._messages:
            if self._messages[(channel, ts)].get("deleted"):
                return {"ok": False, "error": "message_not_found"}
            return None
        posted_elsewhere = any(t == ts for (_, t) in self._messages)
        if posted_elsewhere:
            return {"ok": False, "error": "message_not_found"}
        if self.strict_messages:
            return {"ok": False, "error": "message_not_found"}
        return None

    def _chat_update(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "invalid_arguments"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        channel, ts = str(channel), str(ts)
        problem = self._known_message_problem(channel, ts) or blockkit.message_problem(args)
        if problem is not None:
            return problem
        msg = self._messages.get((channel, ts))
        if msg is None:
            msg = self._message_object(args, ts)
            msg["channel"] = channel
            self._messages[(channel, ts)] = msg
        if "text" in args:
            msg["text"] = args["text"]
        if "blocks" in args:
            msg["blocks"] = args["blocks"]
        if "attachments" in args:
            msg["attachments"] = args["attachments"]
        msg["edited"] = True
        out = {k: v for k, v in msg.items() if k not in ("channel", "edited", "deleted")}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": msg.get("text", ""),
            "message": out,
        }

    def _chat_delete(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        problem = self._known_message_problem(str(channel), str(ts))
        if problem is not None:
            return problem
        msg = self._messages.get((str(channel), str(ts)))
        if msg is not None:
            msg["deleted"] = True
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_get_permalink(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("message_ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        problem = self._known_message_problem(str(channel), str(ts))
        if problem is not None:
            return problem
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://{self.team_domain}.slack.com/archives/{channel}/"
            f"p{str(ts).replace('.', '')}",
        }

    def _store_view(self, view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        if view_id is None:
            self._view_counter += 1
            view_id = f"V{self._view_counter:010d}"
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self._views[view_id] = stored
        return stored

    def _views_open(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            return {"ok": False, "error": "invalid_arguments"}
        view = args.get("view")
        problems = blockkit.view_problems(view)
        if problems:
            return _invalid_arguments(problems)
        if self.enforce_single_use_triggers:
            if trigger in self._used_triggers:
                return {"ok": False, "error": "exchanged_trigger_id"}
            self._used_triggers.add(str(trigger))
        return {"ok": True, "view": self._store_view(view)}

    def _views_update(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            return {"ok": False, "error": "invalid_arguments"}
        view = args.get("view")
        problems = blockkit.view_problems(view)
        if problems:
            return _invalid_arguments(problems)
        if not view_id:
            view_id = next(
                (v["id"] for v in self._views.values() if v.get("external_id") == external_id),
                None,
            )
            if view_id is None:
                return {"ok": False, "error": "not_found"}
        current = self._views.get(str(view_id))
        if current is not None and args.get("hash") and args["hash"] != current["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        return {"ok": True, "view": self._store_view(view, str(view_id))}

    def _views_publish(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        if not user_id:
            return {"ok": False, "error": "invalid_arguments"}
        if str(user_id) not in self._users:
            return {"ok": False, "error": "user_not_found"}
        view = args.get("view")
        problems = blockkit.view_problems(view)
        if not problems and view.get("type") != "home":
            problems = [blockkit.problem("must be home for views.publish", "/view/type")]
        if problems:
            return _invalid_arguments(problems)
        stored = self._store_view(view, self._home_views.get(str(user_id)))
        self._home_views[str(user_id)] = stored["id"]
        return {"ok": True, "view": stored}

    def _conversations_open(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"ok": True, "channel": {"id": args["channel"]}}
        users = args.get("users")
        if isinstance(users, list):
            ids = [str(u) for u in users]
        else:
            ids = [u.strip() for u in str(users or "").split(",") if u.strip()]
        if not ids:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(ids) == 1:
            return {
                "ok": True,
                "no_op": True,
                "already_open": True,
                "channel": {"id": "D" + ids[0]},
            }
        return {"ok": True, "channel": {"id": "G" + secrets.token_hex(5).upper()}}

    def _conversations_members(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        info = self._channels.get(channel)
        if info is None:
            return {"ok": False, "error": "channel_not_found"}
        if info.get("is_member") is False:
            return {"ok": False, "error": "not_in_channel"}
        try:
            limit = int(args.get("limit") or 100)
        except ValueError:
            return {"ok": False, "error": "invalid_limit"}
        limit = max(1, min(limit, 1000))
        if self.members_page_size is not None:
            limit = min(limit, self.members_page_size)
        offset = 0
        cursor = args.get("cursor")
        if cursor:
            try:
                decoded = base64.b64decode(str(cursor), validate=True).decode()
                prefix, _, number = decoded.partition(":")
                if prefix != "offset":
                    raise ValueError(decoded)
                offset = int(number)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return {"ok": False, "error": "invalid_cursor"}
        members = info.get("members", [])
        page = members[offset : offset + limit]
        end = offset + limit
        next_cursor = (
            base64.b64encode(f"offset:{end}".encode()).decode() if end < len(members) else ""
        )
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_info(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel.startswith("D"):
            return {
                "ok": True,
                "channel": {"id": channel, "is_im": True, "user": channel[1:], "is_open": True},
            }
        info = self._channels.get(channel)
        if info is None:
            return {"ok": False, "error": "channel_not_found"}
        out = {
            "id": channel,
            "name": info["name"],
            "is_channel": not info["is_private"],
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": info["is_private"],
            "is_archived": False,
            "is_general": False,
            "is_shared": bool(info.get("is_ext_shared")),
            "is_ext_shared": bool(info.get("is_ext_shared")),
            "is_pending_ext_shared": bool(info.get("is_pending_ext_shared")),
            "is_org_shared": False,
            "is_member": info.get("is_member", True),
            "context_team_id": self.team_id,
            "created": 1_600_000_000,
            "creator": self.bot_user_id,
        }
        if str(args.get("include_num_members", "")).lower() in ("1", "true"):
            out["num_members"] = len(info.get("members", []))
        return {"ok": True, "channel": out}

    def _users_info(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(args.get("user") or ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": json.loads(json.dumps(user))}

    def _users_lookup_by_email(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").strip().lower()
        if not email:
            return {"ok": False, "error": "invalid_email"}
        for user in self._users.values():
            found = str(user["profile"].get("email", "")).lower()
            if found and found == email and not user.get("deleted"):
                return {"ok": True, "user": json.loads(json.dumps(user))}
        return {"ok": False, "error": "users_not_found"}


def _invalid_arguments(problems: list[str]) -> dict[str, Any]:
    return {
        "ok": False,
        "error": "invalid_arguments",
        "response_metadata": {"messages": problems},
    }
