"""Real Redis for tests: skip with a reason where it is missing, fail under CI=true."""

from __future__ import annotations

import os
import uuid

import pytest
import redis.asyncio as redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def require_redis() -> str:
    client = redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        reason = f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    finally:
        await client.aclose()
    return REDIS_URL


def unique_namespace() -> str:
    """Each test its own key space on the shared server, so runs never see each other's keys."""
    return f"test-{uuid.uuid4().hex[:12]}"
