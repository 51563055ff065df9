"""The cache on Redis: JSON on both backends, shared by replicas — and trusted with nothing that
grants rights, and never shared between two deployments. Its rules in memory (keys,
single-flight, bounded-age answers): tests/unit/test_cache.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis.asyncio as redis
from pydantic import SecretStr

from bot.cache.backend import build_backend
from bot.cache.directory import CachedDirectory
from bot.cache.keyed import KeyedCache, cache_key
from bot.runtime import build_slack_client
from bot.slack.notifier import SlackNotifier
from bot.slack.ui import ids
from bot.workflow.models import DirectoryEntry, DirectoryPage, ProvisioningRequest
from bot.workflow.states import RequestState
from tests.support.audit_data import credentials
from tests.support.bot_under_test import (
    APPROVER_CHANNEL,
    OUTSIDER,
    REQUESTER,
    BotUnderTest,
    make_settings,
    response_text,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.flows import PUT, file_request
from tests.support.services import require_redis, unique_namespace


async def test_directory_pages_round_trip_through_redis_as_json_without_tickets() -> None:
    url = await require_redis()
    namespace = unique_namespace()

    class Directory:
        def __init__(self) -> None:
            self.searches = 0

        async def search(self, prefix: str, *, limit: int) -> DirectoryPage:
            self.searches += 1
            entry = DirectoryEntry(
                "julie2", "Julie", "Jolly", "j@example.com", temp_ticket="a+b/c="
            )
            return DirectoryPage(entries=(entry,), total=1)

    directory = Directory()
    writer = CachedDirectory(
        directory,  # type: ignore[arg-type]
        KeyedCache(build_backend(url, namespace=namespace)),
        ttl=30,
        scope="https://connect.example.com/",
    )
    reader = CachedDirectory(
        directory,  # type: ignore[arg-type]
        KeyedCache(build_backend(url, namespace=namespace)),
        ttl=30,
        scope="https://connect.example.com/",
    )
    first = await writer.search("jul", limit=50)
    assert first.entries[0].temp_ticket == "a+b/c="  # the caller's answer is untouched
    shared = await reader.search("jul", limit=50)
    assert directory.searches == 1, "the second instance reads the shared entry"
    assert shared.entries[0].username == "julie2" and shared.total == 1
    assert shared.entries[0].temp_ticket == "", "tickets are never written to the cache"
    client = redis.from_url(url)
    try:
        stored = b"".join(
            [await client.get(key) or b"" async for key in client.scan_iter(f"{namespace}:*")]
        )
    finally:
        await client.aclose()
    assert b"julie2" in stored and b"a+b/c=" not in stored
    await writer.cache.close()
    await reader.cache.close()


async def test_two_app_instances_share_search_results_on_redis(
    fake_slack, fake_connect, tmp_path
) -> None:
    url = await require_redis()
    namespace = unique_namespace()
    bots = []
    try:
        for n in (1, 2):
            settings = make_settings(
                fake_slack,
                fake_connect,
                f"sqlite:///{tmp_path / f'bot{n}.db'}",
                redis_url=url,
                cache_namespace=namespace,
                search_cache_ttl=30,
            )
            bots.append(await start_bot(settings, fake_slack, fake_connect, instance_id=f"r{n}"))
        for running in bots:
            _, response_url = await running.command("search julie", user_id=REQUESTER)
            await running.settle()
            assert "julie2" in str(await fake_slack.wait_for_response(response_url))
        assert fake_connect.count(path="/__api__/v1/users/remote") == 1
        # Who may search is asked by each process itself: Redis is never an authority.
        assert fake_slack.count("users.info") == 2
    finally:
        for running in bots:
            await running.stop()


# -- Redis is a cache, never an authority --------------------------------------------------------


async def redis_bot(
    fake_slack, fake_connect, tmp_path, namespace: str, **overrides
) -> BotUnderTest:
    url = await require_redis()
    settings = make_settings(
        fake_slack,
        fake_connect,
        f"sqlite:///{tmp_path / f'{namespace}.db'}",
        redis_url=url,
        cache_namespace=namespace,
        search_cache_ttl=30,
        **overrides,
    )
    return await start_bot(settings, fake_slack, fake_connect, instance_id=namespace)


async def test_a_forged_redis_entry_makes_no_one_an_approver(
    fake_slack, fake_connect, tmp_path
) -> None:
    """Someone who can write to Redis writes the approver channel's member list (and a clean
    profile) under the keys a bot has kept them in: it changes nothing."""
    namespace = unique_namespace()
    bot = await redis_bot(fake_slack, fake_connect, tmp_path, namespace)
    client = redis.from_url(await require_redis())
    try:
        request_id = await file_request(bot)
        members = ["U0BOT", "UAPPROVER1", OUTSIDER]
        profile = {
            "id": OUTSIDER,
            "team_id": "T0001",
            "deleted": False,
            "is_bot": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_stranger": False,
            "enterprise_user": {"enterprise_id": None},
        }
        # The full keys, as the bot's Redis backend spells them.
        backend = build_backend(await require_redis(), namespace=namespace)
        forged = {
            backend.build_key(f"members:{cache_key(APPROVER_CHANNEL)}"): members,
            backend.build_key(f"user:{cache_key(OUTSIDER)}"): profile,
        }
        for key, value in forged.items():
            await client.set(key, json.dumps(value), ex=60)
        _, response_url = await bot.click(ids.ACTION_APPROVE, request_id, user_id=OUTSIDER)
        await bot.settle()
        answer = response_text((await fake_slack.wait_for_response(response_url))[-1])
        assert "Only members of the approver channel" in answer
        assert fake_connect.count(**PUT) == 0

        # What the bot itself keeps in Redis grants nothing: search results, permalinks and
        # seat counts.
        keys = [key.decode() async for key in client.scan_iter(f"{namespace}:*")]
        kept = {
            key.removeprefix(namespace).strip(":").split(":")[0]
            for key in keys
            if key not in forged
        }
        assert kept == {"search", "permalink", "seats"}, keys
    finally:
        await client.aclose()
        await bot.stop()


async def test_a_forged_redis_entry_makes_no_one_an_auditor(
    fake_slack, fake_connect, tmp_path
) -> None:
    guid = fake_connect.add_local_user("mallory", user_role="viewer")
    namespace = unique_namespace()
    bot = await redis_bot(
        fake_slack, fake_connect, tmp_path, namespace, trust_connect_credentials=True
    )
    client = redis.from_url(await require_redis())
    try:
        assert (await bot.http.get("/requests", headers=credentials("mallory"))).status_code == 403
        forged = {"found": True, "guid": guid, "username": "mallory", "role": "administrator"}
        backend = build_backend(await require_redis(), namespace=namespace)
        key = backend.build_key(cache_key("visitor-account-name", "mallory"))
        await client.set(key, json.dumps(forged), ex=60)
        assert (await bot.http.get("/requests", headers=credentials("mallory"))).status_code == 403
    finally:
        await client.aclose()
        await bot.stop()


async def test_two_deployments_on_one_redis_never_share_search_results(
    fake_slack, fake_connect, tmp_path
) -> None:
    """Same CACHE_NAMESPACE, same Redis, two Connect servers: each shows its own directory."""
    other_connect = FakeConnect().start()
    other_connect.add_directory_user("julie9", "Julie", "Other", "julie9@other.example.com")
    namespace = unique_namespace()
    bots = []
    try:
        for connect in (fake_connect, other_connect):
            url = await require_redis()
            settings = make_settings(
                fake_slack,
                connect,
                f"sqlite:///{tmp_path / f'bot{len(bots)}.db'}",
                redis_url=url,
                cache_namespace=namespace,
                search_cache_ttl=30,
            )
            bots.append(await start_bot(settings, fake_slack, connect, instance_id=f"d{len(bots)}"))
        answers = []
        for running in bots:
            _, response_url = await running.command("search julie", user_id=REQUESTER)
            await running.settle()
            answers.append(response_text((await fake_slack.wait_for_response(response_url))[-1]))
        assert "julie2" in answers[0] and "julie9" not in answers[0]
        assert "julie9" in answers[1] and "julie2" not in answers[1]
        assert other_connect.count(path="/__api__/v1/users/remote") == 1
    finally:
        for running in bots:
            await running.stop()
        other_connect.stop()


async def test_permalinks_on_redis_are_named_by_the_slack_workspace(fake_slack, settings) -> None:
    url = await require_redis()
    namespace = unique_namespace()
    request = ProvisioningRequest(
        id="0123456789abcdef",
        state=RequestState.PENDING,
        requester_id=REQUESTER,
        username="julie2",
        full_name="Julie",
        email="j@example.com",
        temp_ticket="",
        card_channel=APPROVER_CHANNEL,
        card_ts="1700000000.000100",
        created_at=datetime.now(UTC),
    )

    def notifier(workspace: str) -> SlackNotifier:
        async def scope() -> str:
            return workspace

        return SlackNotifier(
            store=None,  # type: ignore[arg-type]  (permalinks need no store)
            client=build_slack_client(settings),
            approver_channel=APPROVER_CHANNEL,
            connect_url=settings.connect_server,
            instance_id=workspace,
            cache=KeyedCache(build_backend(url, namespace=namespace)),
            cache_scope=scope,
        )

    first, replica, other = notifier("E/T0001"), notifier("E/T0001"), notifier("E/T0999")
    try:
        for each in (first, replica, other):
            assert await each.card_permalink(request)
        # The replica of the same workspace shares the entry; the other workspace asks Slack.
        assert fake_slack.count("chat.getPermalink") == 2
    finally:
        for each in (first, replica, other):
            await each.cache.close()


def test_search_results_are_scoped_by_the_key_that_read_them(settings) -> None:
    """One Connect server, two API keys (an administrator's sees emails a publisher's may not):
    their cached searches never mix, and the key itself never reaches a cache key."""
    from bot.cache.directory import CachedDirectory
    from bot.runtime import build_runtime

    scopes = []
    for key in ("admin-key-0123456789", "publisher-key-0123456789"):
        runtime = build_runtime(settings.model_copy(update={"connect_api_key": SecretStr(key)}))
        directory = runtime.provisioner.directory
        assert isinstance(directory, CachedDirectory)
        assert key not in directory.scope and settings.connect_server in directory.scope
        scopes.append(directory.scope)
    assert scopes[0] != scopes[1]
