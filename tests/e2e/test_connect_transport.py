"""The Connect client over the aiohttp transport behaves as over httpx's own."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from bot.connect.client import ConnectClient
from bot.connect.errors import ConnectUnavailable
from bot.connect.transport import AiohttpTransport
from tests.support.fake_connect import FakeConnect


@pytest.fixture
def fake() -> Iterator[FakeConnect]:
    connect = FakeConnect().start()
    connect.add_directory_user("julie2", "Julie", "Jolly", "julie2@example.com")
    try:
        yield connect
    finally:
        connect.stop()


def client_for(url: str, api_key: str, **options: object) -> ConnectClient:
    return ConnectClient(url, api_key, transport=AiohttpTransport(), **options)  # type: ignore[arg-type]


async def test_search_and_create(fake: FakeConnect) -> None:
    async with client_for(fake.url, fake.api_key) as client:
        result = await client.search_remote("jul ie & /%#+=", limit=5)
        assert result.results == []
        found = await client.find_remote_user("julie2")
        assert found is not None
        created = await client.create_from_ticket(found.temp_ticket)
        assert created.username == "julie2"
    assert fake.calls_for(path="/__api__/v1/users/remote")[0].query["prefix"] == "jul ie & /%#+="


async def test_refused_and_slow_are_unavailable_without_secrets(fake: FakeConnect) -> None:
    async with client_for(fake.url, fake.api_key, timeout=0.3, read_retries=0) as client:
        fake.latency = 1.0
        with pytest.raises(ConnectUnavailable) as slow:
            await client.create_from_ticket("TICKET+SECRET/VALUE==")
        assert slow.value.reason == "timeout"
        fake.latency = 0.0
        fake.outage = "refuse"
        with pytest.raises(ConnectUnavailable) as refused:
            await client.create_from_ticket("TICKET+SECRET/VALUE==")
        assert refused.value.reason == "connection"
        for error in (slow.value, refused.value):
            assert "TICKET+SECRET" not in str(error) + repr(error)
            assert fake.api_key not in str(error) + repr(error)


@pytest.fixture
async def gzip_server(unused_tcp_port: int) -> AsyncIterator[str]:
    async def remote(request: web.Request) -> web.Response:
        body = json.dumps({"results": [], "total": 0, "current_page": 1}).encode()
        return web.Response(
            body=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    app = web.Application()
    app.router.add_get("/__api__/v1/users/remote", remote)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{unused_tcp_port}/"
    finally:
        await runner.cleanup()


async def test_compressed_answers_are_decoded_once(gzip_server: str) -> None:
    async with client_for(gzip_server, "key") as client:
        result = await client.search_remote("x", limit=5)
    assert result.total == 0
