"""The fake Slack and fake Connect servers in a process of their own, driven over a pipe.

The load generator must not share a GIL with the fakes (a fake's thread holding the GIL for a few
milliseconds would show up as the bot's latency), and the bot must not share a core with either.
So the fakes run here, pinned to the load generator's core, and the orchestrator talks to them with
small synchronous calls (`FakesClient.call`).

FakeSlack keeps every response_url post in one list and counts a URL's earlier uses by scanning it,
which is quadratic over a long run; a thread here moves the posts out of the fake every 200 ms into
a compact list of (url, time, status). Benchmarks use each response_url once, so the fake's limit of
five uses per URL is unaffected.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bench.machine import pin_to


@dataclass(frozen=True)
class Post:
    url: str
    time: float
    status: int


class _Host:
    def __init__(self) -> None:
        from tests.support.fake_connect import FakeConnect
        from tests.support.fake_slack import FakeSlack

        self.slack = FakeSlack().start()
        self.slack.response_url_max_uses = None
        self.connect = FakeConnect().start()
        self._posts: list[tuple[str, float, int]] = []
        self._posts_lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._drain_loop, name="drain-posts", daemon=True).start()

    # -- response_url posts, drained out of the fake -------------------------------------------
    def _drain(self) -> None:
        slack = self.slack
        with slack._lock:  # the fake's own lock: nothing is appended while we move the list
            taken = slack._posts
            slack._posts = []
        if taken:
            with self._posts_lock:
                self._posts.extend((p.url, p.time, p.status) for p in taken)

    def _drain_loop(self) -> None:
        while not self._stop.wait(0.2):
            self._drain()

    def post_count(self) -> int:
        self._drain()
        with self._posts_lock:
            return len(self._posts)

    def posts(self, start: int = 0) -> list[tuple[str, float, int]]:
        self._drain()
        with self._posts_lock:
            return self._posts[start:]

    def forget_posts(self) -> None:
        self._drain()
        with self._posts_lock:
            self._posts = []

    # -- Slack Web API calls (compact) ---------------------------------------------------------
    def slack_calls(self, method: str, fields: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
        """(time, ok, *args[field]) for every call to `method`."""
        return [
            (c.time, c.ok, *(c.args.get(f) for f in fields)) for c in self.slack.calls_to(method)
        ]

    def slack_reset(self) -> None:
        self.slack.reset()
        self.forget_posts()

    def connect_count(self, method: str | None = None, path: str | None = None) -> int:
        return self.connect.count(method, path)

    def seed_directory(self, people: list[tuple[str, str, str]]) -> None:
        for username, first, last in people:
            self.connect.add_directory_user(username, first, last, f"{username}@example.com")

    def cpu_seconds(self) -> float:
        t = os.times()
        return t.user + t.system

    def close(self) -> None:
        self._stop.set()
        self.connect.stop()
        self.slack.stop()


def _serve(conn: Connection, cpus: set[int] | None) -> None:
    if cpus:
        pin_to(cpus)
    host = _Host()
    conn.send(("ready", host.slack.base_url, host.connect.url, host.connect.api_key))
    try:
        while True:
            try:
                op, target, name, args, kwargs = conn.recv()
            except EOFError:
                return
            try:
                if op == "stop":
                    conn.send(("ok", None))
                    return
                obj = {"host": host, "slack": host.slack, "connect": host.connect}[target]
                if op == "call":
                    result = getattr(obj, name)(*args, **kwargs)
                elif op == "set":
                    setattr(obj, name, args[0])
                    result = None
                else:
                    raise ValueError(op)
                conn.send(("ok", result))
            except Exception as exc:  # report to the caller, keep serving
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        host.close()


class FakesClient:
    """The orchestrator's handle on the fakes process."""

    def __init__(self, cpus: set[int] | None) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, cpus), name="bench-fakes")
        self.process.start()
        if not self._conn.poll(30):
            raise RuntimeError("the fakes process did not start within 30 s")
        status, slack_base, connect_url, api_key = self._conn.recv()
        assert status == "ready"
        self.slack_base_url: str = slack_base
        self.slack_api_url: str = slack_base + "/api/"
        self.connect_url: str = connect_url
        self.connect_api_key: str = api_key
        self._lock = threading.Lock()

    def call(self, target: str, method: str, /, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._conn.send(("call", target, method, args, kwargs))
            status, result = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"fakes: {target}.{method} failed: {result}")
        return result

    def set(self, target: str, name: str, value: Any) -> None:
        with self._lock:
            self._conn.send(("set", target, name, (value,), {}))
            status, result = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"fakes: setting {target}.{name} failed: {result}")

    # shorthands
    def slack(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        return self.call("slack", method, *args, **kwargs)

    def connect(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        return self.call("connect", method, *args, **kwargs)

    def host(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        return self.call("host", method, *args, **kwargs)

    def new_response_url(self, rid: str) -> str:
        """A response_url on the fake; any path under /response/ is accepted and recorded."""
        return f"{self.slack_base_url}/response/{rid}"

    def posts(self, start: int = 0) -> list[Post]:
        return [Post(*p) for p in self.host("posts", start)]

    def close(self) -> None:
        if self.process.is_alive():
            try:
                with self._lock:
                    self._conn.send(("stop", "host", "", (), {}))
                    if self._conn.poll(10):
                        self._conn.recv()
            except (OSError, EOFError):
                pass
            self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
