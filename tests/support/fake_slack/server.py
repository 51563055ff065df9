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

FakeSlack is made of one part per job, each in its own module:

  server.py         this module: the aiohttp app in its thread, routing, the Web API entry point
                    (arguments, token, latency, faults), the record of calls
  methods.py        the Web API methods, answered from the state
  state.py          the workspace: users, channels, messages, views, Home tabs, used triggers
  response_urls.py  the response_url endpoint: posts, their limits, their edits of messages
  socket_mode.py    apps.connections.open and the websocket
  faults.py         failures, latency and handlers a test injects

Block Kit payloads are checked with tests/support/blockkit.py: the rules the tests hold the bot's
own payloads to.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.support.fake_slack.faults import Faults
from tests.support.fake_slack.methods import WebApiMethods
from tests.support.fake_slack.response_urls import ResponsePost, ResponseUrls
from tests.support.fake_slack.socket_mode import SocketMode
from tests.support.fake_slack.state import WorkspaceState

__all__ = ["INSTANCES", "FakeSlack", "ResponsePost", "SlackCall"]

_JSON_ARGS = ("blocks", "attachments", "view", "metadata", "user_auth_blocks")


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


# Every fake made in this process: the log guard collects their response_urls.
INSTANCES: list[FakeSlack] = []


class FakeSlack(WebApiMethods, WorkspaceState, ResponseUrls, SocketMode, Faults):
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
        self.expected_token = token
        self._lock = threading.RLock()  # guards the records and every part's state
        self._calls: list[SlackCall] = []
        self._init_state(
            team_id=team_id,
            team_name=team_name,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            members_page_size=members_page_size,
        )
        self._init_faults()
        self._init_response_urls()
        self._init_socket_mode()

        self._loop: asyncio.AbstractEventLoop | None = None
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
            self._reset_response_urls(config=config)
            if config:
                self._reset_faults()
                self._reset_state()
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
    # Web API: arguments, token, latency, faults, then the method
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
