"""A lean HTTP/1.1 load generator: pre-signed requests, keep-alive connections, httptools parsing.

httpx costs about a millisecond of CPU per request, which on a 2-core machine would make the load
generator the thing being measured. Here a request is a ready-made bytes object and a response is
parsed only as far as its status line and end.

Two drivers:

* `open_loop`: request *i* is sent at ``t0 + i / rate`` whether or not earlier ones were answered
  (a connection is opened when none is idle), and its latency is measured from that scheduled time,
  so a stalled server cannot hide its stall by slowing the sender down (no coordinated omission).
* `closed_loop`: *n* connections each send the next request when the previous one is answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httptools

from tests.support.slack_requests import sign


@dataclass(frozen=True)
class Sample:
    scheduled: float  # wall clock (time.time()) at which the request was due to be sent
    latency: float  # seconds from `scheduled` to the complete response; inf on error
    status: int  # HTTP status, 0 on a transport error


def build_request(host: str, body: str, secret: str, path: str = "/slack/events") -> bytes:
    headers = sign(body, secret)
    data = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: {headers['Content-Type']}\r\n"
        f"X-Slack-Request-Timestamp: {headers['X-Slack-Request-Timestamp']}\r\n"
        f"X-Slack-Signature: {headers['X-Slack-Signature']}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, float]] | None = None
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("closed"))

    # httptools callbacks
    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), time.perf_counter()))
        if not self.parser.should_keep_alive():
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, raw: bytes) -> asyncio.Future[tuple[int, float]]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter


class Pool:
    """Keep-alive connections to one server; a new one is opened whenever none is idle."""

    def __init__(self, host: str, port: int, max_connections: int = 512) -> None:
        self.host, self.port = host, port
        self.idle: list[_Conn] = []
        self.opened = 0
        self.max_connections = max_connections
        self._slots = asyncio.Semaphore(max_connections)

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    async def _open(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        self.opened += 1
        return conn

    async def warm(self, n: int) -> None:
        conns = await asyncio.gather(*(self._open() for _ in range(n)))
        self.idle.extend(conns)

    async def request(self, raw: bytes, give_up_after: float = 30.0) -> tuple[int, float]:
        """(HTTP status, perf_counter() when the response was complete)."""
        async with self._slots:
            conn = None
            while self.idle:
                candidate = self.idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            if conn is None:
                conn = await self._open()
            try:
                answer = await asyncio.wait_for(conn.send(raw), give_up_after)
            except BaseException:
                if conn.transport is not None:
                    conn.transport.close()
                raise
            if not conn.closed:
                self.idle.append(conn)
            return answer

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()


async def _timed(
    pool: Pool, raw: bytes, due: float, wall_offset: float, give_up_after: float
) -> Sample:
    try:
        status, done = await pool.request(raw, give_up_after)
        latency = done - due
    except (OSError, TimeoutError, httptools.HttpParserError, asyncio.IncompleteReadError):
        status, latency = 0, float("inf")
    return Sample(due + wall_offset, latency, status)


async def open_loop(
    pool: Pool,
    requests: Sequence[bytes],
    rate: float,
    *,
    start_delay: float = 0.05,
    give_up_after: float = 30.0,
    max_seconds: float | None = None,
) -> list[Sample]:
    """Send ``requests`` on schedule at ``rate`` per second (``rate=inf``: all at once)."""
    loop = asyncio.get_running_loop()
    wall_offset = time.time() - time.perf_counter()
    t0 = time.perf_counter() + start_delay
    stop_at = t0 + max_seconds if max_seconds else float("inf")
    tasks: list[asyncio.Task[Sample]] = []
    for i, raw in enumerate(requests):
        due = t0 if rate == float("inf") else t0 + i / rate
        if due > stop_at:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(_timed(pool, raw, due, wall_offset, give_up_after)))
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, timeout=give_up_after + 5)
    for task in pending:
        task.cancel()
    return [t.result() for t in tasks if t in done and not t.cancelled()]


async def closed_loop(
    pool: Pool,
    next_request: Callable[[], bytes | None],
    *,
    connections: int,
    seconds: float,
    give_up_after: float = 30.0,
) -> list[Sample]:
    """``connections`` workers send back to back for ``seconds`` (or until ``next_request`` gives
    None); latency is measured from each send."""
    wall_offset = time.time() - time.perf_counter()
    stop_at = time.perf_counter() + seconds
    samples: list[Sample] = []

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            raw = next_request()
            if raw is None:
                return
            samples.append(await _timed(pool, raw, time.perf_counter(), wall_offset, give_up_after))

    await asyncio.gather(*(worker() for _ in range(connections)))
    return samples


async def windowed(
    pool: Pool,
    next_request: Callable[[], bytes | None],
    completed: Callable[[], int],
    *,
    window: int,
    seconds: float,
    poll: float = 0.005,
    give_up_after: float = 30.0,
) -> tuple[int, list[Sample]]:
    """Keep ``window`` round trips in flight for ``seconds``: a round trip is sent when fewer than
    ``window`` sent ones have ``completed()`` (counted elsewhere, e.g. results the fake Slack
    received). Returns (requests sent, ack samples)."""
    loop = asyncio.get_running_loop()
    wall_offset = time.time() - time.perf_counter()
    stop_at = time.perf_counter() + seconds
    base = completed()
    sent = 0
    tasks: list[asyncio.Task[Sample]] = []
    exhausted = False
    while time.perf_counter() < stop_at and not exhausted:
        outstanding = sent - (completed() - base)
        for _ in range(max(0, window - outstanding)):
            raw = next_request()
            if raw is None:
                exhausted = True
                break
            tasks.append(
                loop.create_task(_timed(pool, raw, time.perf_counter(), wall_offset, give_up_after))
            )
            sent += 1
        await asyncio.sleep(poll)
    done, pending = await asyncio.wait(tasks, timeout=give_up_after) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    return sent, [t.result() for t in tasks if t in done and not t.cancelled()]
