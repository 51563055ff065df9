"""Socket Mode: apps.connections.open hands out ws://…/socket; envelopes go down it and the app's
acks come back (https://api.slack.com/apis/socket-mode)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import web


class SocketMode:
    """Part of FakeSlack (server.py), which serves ``/socket`` and runs the event loop."""

    _lock: threading.RLock
    _loop: asyncio.AbstractEventLoop | None

    def _init_socket_mode(self) -> None:
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_acks: list[dict[str, Any]] = []

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
