"""Where the bot keeps secrets, and for how long: each claim of README.md ("Where secrets live")
and SECURITY.md checked by reading the database, the cache and the process environment after
the flow that puts them there."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as redis
import sqlalchemy as sa
from alembic import command

from bot.slack.ui import ids
from bot.slack.ui.values import decode_person_value
from bot.store.migrate import _alembic_config, current_revision
from bot.store.tables import outbox, provisioning_requests
from bot.workflow.models import NewRequest, OutboxItem, OutboxKind, Person
from tests.support.bot_under_test import (
    APPROVER,
    BOT_TOKEN,
    REQUESTER,
    SIGNING_SECRET,
    BotUnderTest,
    make_settings,
    start_bot,
)
from tests.support.flows import approve, open_request_form, submit_request
from tests.support.old_rows import insert_old_request
from tests.support.services import require_redis, unique_namespace
from tests.support.store_backends import BACKENDS, StoreBackend, open_store_backend, store_backend

__all__ = ["store_backend"]  # the parametrised fixture (sqlite, postgres)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RESPONSE_URL = "https://hooks.slack.com/actions/T0/1/secret-response-url-0001"


async def database_text(engine: sa.ext.asyncio.AsyncEngine) -> str:
    """Every value of every row of the bot's tables, as one text to search."""
    async with engine.connect() as conn:
        rows = [
            *(await conn.execute(sa.select(provisioning_requests))),
            *(await conn.execute(sa.select(outbox))),
        ]
    return "\n".join(json.dumps([str(value) for value in row]) for row in rows)


async def wait_until_outbox_idle(engine: sa.ext.asyncio.AsyncEngine) -> None:
    """Until a delivery was tried and no worker holds a message: the background worker may still
    be failing a delivery when the test's own pass finds nothing left to claim."""
    for _ in range(500):
        async with engine.connect() as conn:
            leased, tried = (
                await conn.execute(
                    sa.select(
                        sa.func.count(outbox.c.lease_owner),
                        sa.func.count().filter(outbox.c.attempts > 0),
                    )
                )
            ).one()
        if tried and not leased:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the outbox did not go idle")


async def outbox_text(engine: sa.ext.asyncio.AsyncEngine) -> str:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(outbox))
        return "\n".join(json.dumps([str(value) for value in row]) for row in rows)


def issued_secrets(bot: BotUnderTest) -> tuple[set[str], set[str]]:
    return set(bot.connect.issued_tickets), set(bot.slack.issued_response_urls)


def found(secrets: set[str], text: str) -> set[str]:
    return {secret for secret in secrets if secret in text}


# -- the database ------------------------------------------------------------------------------


async def test_tickets_and_response_urls_in_the_database_only_while_needed(
    bot: BotUnderTest,
) -> None:
    engine = bot.runtime.engine
    outbox_seen: list[str] = []
    view, click_url = await open_request_form(bot, "julie2")
    # The request form carries the button's value (who, never a ticket) and the click's
    # response_url in its private_metadata: Slack holds them while the form is open.
    metadata = json.loads(view["private_metadata"])
    assert metadata["r"] == click_url
    assert decode_person_value(metadata["v"]).username == "julie2"
    assert found(bot.connect.issued_tickets, view["private_metadata"]) == set()
    assert found({click_url}, await database_text(engine)) == set(), "nothing stored yet"

    # Hold the messages back (the card first, and the confirmation waits behind it): until the
    # confirmation is delivered, the outbox keeps its response_url.
    bot.slack.fail("chat.postMessage", status=500, times=None)
    bot.runtime.notifier.backoff_base = 60
    await bot.submit(
        ids.VIEW_JUSTIFICATION,
        {ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "Needs the quarterly report."}},
        view["private_metadata"],
        user_id=REQUESTER,
    )
    await bot.runtime.supervisor.join()
    await bot.runtime.notifier.deliver_due()
    await wait_until_outbox_idle(engine)
    request = await bot.runtime.store.find_active("julie2")
    assert request is not None and request.temp_ticket
    outbox_seen.append(await outbox_text(engine))
    text = await database_text(engine)
    assert request.temp_ticket in text, "a pending request keeps its ticket"
    assert click_url in text, "an undelivered confirmation keeps its response_url"

    bot.slack.clear_faults()
    async with engine.begin() as conn:
        await conn.execute(sa.update(outbox).values(next_attempt_at=None))
    await bot.settle()
    assert bot.slack.responses(click_url), "the confirmation went through the response_url"
    outbox_seen.append(await outbox_text(engine))
    text = await database_text(engine)
    tickets, response_urls = issued_secrets(bot)
    assert found(response_urls, text) == set(), "delivered: its response_url is forgotten"
    assert request.temp_ticket in text

    await approve(bot, request.id)
    text = await database_text(engine)
    assert found(tickets, text) == set(), "decided: the ticket is blanked"
    assert found(response_urls, text) == set()

    # Never in the outbox, and never in what the bot sent anywhere but the searcher's results
    # and the request form: the card, its updates, the confirmation, the DMs.
    assert found(tickets, str(outbox_seen)) == set()
    sent = [
        call.args
        for call in bot.slack.calls
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral")
    ]
    assert sent and found(tickets, json.dumps(sent)) == set()
    assert found(tickets, json.dumps(bot.slack.responses(click_url))) == set()


async def test_a_denied_request_keeps_no_ticket(bot: BotUnderTest) -> None:
    view, _ = await open_request_form(bot, "julie2")
    await submit_request(bot, view, "Needs to publish the quarterly report.")
    request = await bot.runtime.store.find_active("julie2")
    assert request is not None
    outcome = await bot.runtime.requests.deny(request.id, APPROVER, "not this quarter")
    assert outcome.request.state.value == "denied"
    await bot.settle()
    text = await database_text(bot.runtime.engine)
    tickets, response_urls = issued_secrets(bot)
    assert found(tickets | response_urls, text) == set()


def confirmation(response_url: str = RESPONSE_URL) -> OutboxItem:
    return OutboxItem(OutboxKind.CONFIRM_REQUESTER, {"response_url": response_url})


def new_request(request_id: str, username: str) -> NewRequest:
    return NewRequest(
        request_id=request_id,
        requester_id=REQUESTER,
        person=Person(username, "Some One", f"{username}@example.com", f"tkt-{username}"),
        justification="needs it",
        created_at=T0,
    )


async def payloads(backend: StoreBackend) -> dict[str, dict]:
    async with backend.engine.connect() as conn:
        rows = await conn.execute(sa.select(outbox.c.request_id, outbox.c.payload))
        return {row.request_id: row.payload for row in rows}


async def test_a_response_url_leaves_the_outbox_once_delivered_or_given_up(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    for request_id in ("delivered", "given-up", "retried"):
        await store.create(new_request(request_id, request_id), outbox=[confirmation()])
    claimed = {
        m.request_id: m for m in await store.claim_outbox(owner="w", now=T0, lease_seconds=30)
    }
    assert claimed["delivered"].payload == {"response_url": RESPONSE_URL}
    await store.outbox_delivered(claimed["delivered"].id, now=T0)
    await store.outbox_give_up(claimed["given-up"].id, now=T0, error="expired_url")
    await store.outbox_retry_later(
        claimed["retried"].id, next_attempt_at=T0 + timedelta(seconds=5), error="internal_error"
    )
    stored = await payloads(store_backend)
    assert stored["delivered"] == {} and stored["given-up"] == {}
    assert stored["retried"] == {"response_url": RESPONSE_URL}, "still needed for the retry"


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_migration_0004_forgets_payloads_delivered_before_it(
    backend_name: str, tmp_path: Path
) -> None:
    async with open_store_backend(backend_name, tmp_path, migrate=False) as old:
        async with old.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "0003"))
        async with old.engine.begin() as conn:
            for request_id in ("delivered", "given-up", "waiting"):
                confirm = confirmation()
                await insert_old_request(
                    conn,
                    request_id,
                    request_id,
                    created_at=T0,
                    outbox=[(confirm.kind.value, confirm.payload)],
                )
            await conn.execute(
                sa.update(outbox).where(outbox.c.request_id == "delivered").values(delivered_at=T0)
            )
            await conn.execute(
                sa.update(outbox).where(outbox.c.request_id == "given-up").values(failed_at=T0)
            )
        async with old.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "0004"))
        assert await current_revision(old.engine) == "0004"
        stored = await payloads(old)
    assert stored == {
        "delivered": {},
        "given-up": {},
        "waiting": {"response_url": RESPONSE_URL},
    }


# -- the cache ---------------------------------------------------------------------------------


async def redis_text(url: str, namespace: str) -> tuple[str, dict[str, int]]:
    client = redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(f"{namespace}:*")]
        values = [await client.get(key) for key in keys]
        ttls = {key.decode(): await client.ttl(key) for key in keys}
    finally:
        await client.aclose()
    return "\n".join(value.decode() for value in values if value), ttls


async def test_the_cache_holds_search_results_for_the_search_ttl_and_nothing_secret(
    fake_slack, fake_connect, tmp_path: Path
) -> None:
    url = await require_redis()
    fake_connect.add_directory_user("nina", "Nina", "Nakamura", "nina@example.com")
    for ttl, username in ((30, "julie2"), (0, "nina")):
        namespace = unique_namespace()
        settings = make_settings(
            fake_slack,
            fake_connect,
            f"sqlite:///{tmp_path / f'cache{ttl}.db'}",
            redis_url=url,
            cache_namespace=namespace,
            search_cache_ttl=ttl,
        )
        bot = await start_bot(settings, fake_slack, fake_connect, instance_id=f"cache-{ttl}")
        try:
            view, _ = await open_request_form(bot, username)
            await submit_request(bot, view, "Needs to publish the quarterly report.")
            request = await bot.runtime.store.find_active(username)
            assert request is not None
            await approve(bot, request.id)
        finally:
            await bot.stop()
        text, ttls = await redis_text(url, namespace)
        tickets, response_urls = issued_secrets(bot)
        assert ttls, "the cache was used"
        for secret in (BOT_TOKEN, SIGNING_SECRET, fake_connect.api_key, *response_urls):
            assert secret not in text
        # What else is kept, and for how long (SECURITY.md, "The shared cache"): permalinks and
        # seat counts (numbers only); who may search or decide never reaches Redis.
        left = [seconds for key, seconds in ttls.items() if ":permalink:" in key]
        assert left and all(0 < seconds <= 24 * 3600 for seconds in left), ttls
        seats = [seconds for key, seconds in ttls.items() if ":seats:" in key]
        assert all(0 < seconds <= 60 for seconds in seats), ttls
        kinds = {key.split("::", 1)[-1].split(":", 1)[0] for key in ttls}
        assert kinds <= {"search", "permalink", "seats"}, ttls
        assert found(tickets, text) == set(), "tickets are never written to the cache"
        search_ttls = [left for key, left in ttls.items() if ":search:" in key]
        if ttl:
            assert "julie2@example.com" in text, "search results are cached"
            assert search_ttls and all(0 < left <= ttl for left in search_ttls)
        else:
            assert search_ttls == [], "SEARCH_CACHE_TTL=0 keeps search results out"


# -- the process environment --------------------------------------------------------------------


def test_slack_secrets_leave_the_process_environment_once_read(tmp_path: Path) -> None:
    code = (
        "import os\n"
        "from bot.cli import main\n"
        "main(['migrate'])\n"
        "names = ('SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN',\n"
        "         'CONNECT_API_KEY')\n"
        "print(sorted(name for name in names if name in os.environ))\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": "xapp-environment-test",
        "SLACK_APPROVER_CHANNEL": "CAPPROVERS",
        "CONNECT_SERVER": "https://connect.internal/",
        "CONNECT_API_KEY": "environment-test-key",
        "DATABASE_URL": "sqlite:///./env.db",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # The Slack secrets are gone; the Connect key stays where the platform put it.
    assert result.stdout.strip().splitlines()[-1] == "['CONNECT_API_KEY']"
