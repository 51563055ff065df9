"""ConnectClient against the fake Connect on a real loopback port (under a sub-path, as Connect is
often served), and the fake Connect's own behaviour as a server. In process:
tests/unit/test_connect_client.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.connect.client import ConnectClient
from bot.connect.errors import ConnectUnavailable
from tests.support.connect_client import (
    KEY,
    ODD_PREFIXES,
    TIMEOUT,
    assert_no_secret,
    error_text,
    make_fake,
)
from tests.support.fake_connect import FakeConnect


@pytest.fixture
def served() -> Iterator[FakeConnect]:
    with make_fake(sub_path="/rsc") as fake:
        yield fake


async def test_real_port_end_to_end_with_sub_path(served: FakeConnect) -> None:
    assert served.url.endswith("/rsc/")
    async with ConnectClient(served.url, KEY, timeout=2) as c:
        for prefix in ODD_PREFIXES:
            await c.search_remote(prefix, limit=3)
            assert served.calls[-1].query == {"prefix": prefix, "limit": "3"}
        julie = await c.find_remote_user("julie")
        created = await c.create_from_ticket(julie.temp_ticket)  # type: ignore[union-attr]
        assert (await c.find_user("julie")).guid == created.guid  # type: ignore[union-attr]
        assert (await c.get_user(created.guid)).username == "julie"


async def test_real_port_put_timeout_is_not_retried_and_outcome_is_settled_by_lookup(
    served: FakeConnect,
) -> None:
    served.put_mode = "commit_then_hang"
    async with ConnectClient(served.url, KEY, timeout=TIMEOUT, backoff=0) as c:
        julie = await c.find_remote_user("julie")
        with pytest.raises(ConnectUnavailable) as info:
            await c.create_from_ticket(julie.temp_ticket)  # type: ignore[union-attr]
        assert info.value.reason == "timeout"
        assert served.count("PUT", "v1/users") == 1
        assert await c.find_user("julie") is not None  # it did take effect


async def test_real_port_get_timeout_is_retried(served: FakeConnect) -> None:
    served.latency = {"v1/users/remote": 0.3}
    async with ConnectClient(served.url, KEY, timeout=0.1, read_retries=1, backoff=0) as c:
        with pytest.raises(ConnectUnavailable) as info:
            await c.search_remote("julie", limit=5)
    assert info.value.reason == "timeout"
    assert served.count("GET", "v1/users/remote") == 2


async def test_real_port_refusal_and_restart_on_the_same_port(served: FakeConnect) -> None:
    url = served.url
    async with ConnectClient(url, KEY, timeout=TIMEOUT, read_retries=1, backoff=0) as c:
        await c.current_user()  # leaves a keep-alive connection in the pool
        served.outage = "refuse"
        with pytest.raises(ConnectUnavailable) as info:
            await c.current_user()
        assert info.value.reason == "connection"
        assert_no_secret(error_text(info.value))
        with pytest.raises(ConnectUnavailable):
            await c.create_from_ticket(served.issue_ticket("julie"))
        served.outage = None
        assert served.url == url
        assert (await c.current_user()).guid == served.owner_guid


async def test_real_port_concurrent_calls_share_a_bounded_pool(served: FakeConnect) -> None:
    served.latency = 0.02
    async with ConnectClient(served.url, KEY, timeout=2, max_connections=4) as c:
        results = await asyncio.gather(*(c.search_remote("jul", limit=10) for _ in range(40)))
    assert all(r.total == 3 for r in results)
    assert served.count("GET", "v1/users/remote") == 40


def test_fake_start_stop_is_fast_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    fake = FakeConnect()
    started = time.perf_counter()
    fake.start()
    port = fake.port
    fake.stop()
    fake.start()
    assert fake.port == port
    fake.stop()
    assert time.perf_counter() - started < 1.0
    assert set(threading.enumerate()) == before


def test_fake_speaks_connect_error_bodies() -> None:
    fake = FakeConnect()
    with fake, httpx.Client(base_url=fake.url + "__api__/") as http:
        response = http.get("v1/users/remote", params={"prefix": "a", "limit": 501})
        assert response.status_code == 401
        assert response.json() == {
            "code": 24,
            "error": "The requested operation requires authentication.",
            "payload": None,
        }
        headers = {"Authorization": f"Key {fake.api_key}"}
        response = http.get(
            "v1/users/remote", params={"prefix": "a", "limit": 501}, headers=headers
        )
        # Outside 1-500: "The requested range is invalid." (code 13, the fake's choice).
        assert response.status_code == 400 and json.loads(response.text)["code"] == 13
        response = http.put("v1/users", json={"temp_ticket": "nope"}, headers=headers)
        assert (response.status_code, response.json()["code"]) == (400, 127)
