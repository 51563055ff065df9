"""Socket Mode: apps.connections.open hands out ws://…/socket?ticket=…, as Slack hands out
wss://…/link/?ticket=…&app_id=…; envelopes go down it and the app's acks come back
(https://api.slack.com/apis/socket-mode). The ticket opens a connection as the app: the log guard
counts every ticket handed out as a secret."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from typing import Any

from aiohttp import web


class SocketMode:
    """Part of FakeSlack (server.py), which serves ``/socket`` and runs the event loop.

    ``socket_handshake_status``: when set, the websocket handshake is refused with that HTTP
    status (the client's connect then fails with aiohttp's WSServerHandshakeError)."""

    _lock: threading.RLock
    _loop: asyncio.AbstractEventLoop | None
    app_id: str

    def _init_socket_mode(self) -> None:
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_acks: list[dict[str, Any]] = []
        self._socket_tickets: list[str] = []
        self.socket_handshake_status: int | None = None

    def _apps_connections_open(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ticket = secrets.token_hex(16)
        with self._lock:
            self._socket_tickets.append(ticket)
        url = f"ws://127.0.0.1:{self.port}/socket?ticket={ticket}&app_id={self.app_id}"
        return {"ok": True, "url": url}

    @property
    def issued_socket_tickets(self) -> list[str]:
        """Every Socket Mode ticket handed out (each opens a connection as the app)."""
        with self._lock:
            return list(self._socket_tickets)

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if self.socket_handshake_status is not None:
            return web.Response(status=self.socket_handshake_status)
        if request.query.get("ticket") not in self.issued_socket_tickets:
            return web.Response(status=401)
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
