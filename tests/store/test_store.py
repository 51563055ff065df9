"""The SQL store on SQLite and PostgreSQL: URLs that reach the database, migrations, and the
races the workflow needs. URLs read without a database: tests/unit/test_store_urls.py."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot.store.database import create_engine
from bot.store.migrate import current_revision, head_revisions, is_up_to_date, upgrade
from bot.store.sql_store import SqlRequestStore
from bot.store.tables import metadata, outbox
from bot.workflow.models import OutboxItem, OutboxKind, ProvisioningRequest
from bot.workflow.ports import DuplicateRequestError
from bot.workflow.states import RequestState
from tests.support import store_backends
from tests.support.samples import T0, new_request, ticket_for
from tests.support.store_backends import (
    BACKENDS,
    StoreBackend,
    open_store_backend,
    require_postgres,
)

# The fixture, parametrised over sqlite and postgres (an assignment rather than an import, so the
# test parameters of the same name do not read as redefinitions).
store_backend = store_backends.store_backend

PENDING = RequestState.PENDING
PROVISIONING = RequestState.PROVISIONING


def card(n: int = 1) -> OutboxItem:
    return OutboxItem(OutboxKind.POST_CARD, {"n": n})


async def outbox_rows(backend: StoreBackend) -> list[sa.Row]:
    async with backend.engine.connect() as conn:
        return list(await conn.execute(sa.select(outbox).order_by(outbox.c.id)))


def formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


# -- URLs on a live PostgreSQL ---------------------------------------------------------------

LIVE_PARAMS = [
    ("sslmode=disable", None),
    ("sslmode=allow", None),
    ("sslmode=prefer", None),
    ("connect_timeout=5&command_timeout=20", None),
    ("keepalives=1&keepalives_idle=30&tcp_user_timeout=1000&client_encoding=utf8", None),
    ("application_name=store-test", ("application_name", "store-test")),
    ("fallback_application_name=store-fb", ("application_name", "store-fb")),
    ("options=-c%20statement_timeout%3D4321", ("statement_timeout", "4321ms")),
    ("search_path=somewhere_else", ("search_path", "somewhere_else")),
    ("statement_cache_size=0&prepared_statement_cache_size=0", None),
]


@pytest.mark.parametrize(("params", "setting"), LIVE_PARAMS)
async def test_postgres_url_params_reach_asyncpg(
    params: str, setting: tuple[str, str] | None
) -> None:
    admin = await require_postgres()
    engine = create_engine(f"{admin}{'&' if '?' in admin else '?'}{params}", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT 1")) == 1
            if setting is not None:
                name, value = setting
                assert await conn.scalar(sa.text(f"SHOW {name}")) == value
    finally:
        await engine.dispose()


async def test_postgres_dbname_param_selects_database() -> None:
    admin = make_url(await require_postgres())
    url = admin.set(database=None).update_query_dict({"dbname": admin.database})
    engine = create_engine(url.render_as_string(hide_password=False), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT current_database()")) == admin.database
    finally:
        await engine.dispose()


async def test_postgres_certificate_params_reach_asyncpg() -> None:
    admin = await require_postgres()
    sep = "&" if "?" in admin else "?"
    engine = create_engine(
        f"{admin}{sep}sslmode=verify-full&sslrootcert=/nonexistent/store-test-ca.pem",
        poolclass=NullPool,
    )
    try:
        # asyncpg loads the CA file before connecting, so a missing one proves the path got through
        # (without it asyncpg complains about ~/.postgresql/root.crt instead). It must never be
        # dropped silently, or verify-full would verify against the wrong CAs.
        with pytest.raises(FileNotFoundError):
            async with engine.connect():
                pass
    finally:
        await engine.dispose()


# -- migrations ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_upgrade_is_idempotent_and_concurrent_safe(backend_name: str, tmp_path: Path) -> None:
    async with open_store_backend(backend_name, tmp_path, migrate=False) as backend:
        assert await current_revision(backend.engine) is None
        assert not await is_up_to_date(backend.engine)

        # Two "replicas" starting at once: one migrates, the other waits and finds nothing to do.
        await asyncio.gather(upgrade(backend.engine), upgrade(backend.new_engine()))
        await upgrade(backend.engine)

        assert await current_revision(backend.engine) in head_revisions()
        assert await is_up_to_date(backend.engine)
        assert await is_up_to_date(backend.new_engine())

        # tables.py (what queries use) and the migrations (what creates tables) agree.
        async with backend.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
        assert diff == []


async def test_upgrade_accepts_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/by-url.db"
    await upgrade(url)
    engine = create_engine(url)
    try:
        assert await is_up_to_date(engine)
    finally:
        await engine.dispose()


async def test_in_memory_sqlite_works_with_concurrent_writers() -> None:
    engine = create_engine(":memory:")
    try:
        await upgrade(engine)
        store = SqlRequestStore(engine)
        await store.create(new_request())
        results = await asyncio.gather(
            *(
                store.transition("req1", from_states=[PENDING], to_state=PROVISIONING, now=T0)
                for _ in range(10)
            )
        )
        assert sum(r is not None for r in results) == 1
    finally:
        await engine.dispose()


# -- requests --------------------------------------------------------------------------------


async def test_ping(store_backend: StoreBackend) -> None:
    await store_backend.store.ping()


async def test_create_get_round_trip(store_backend: StoreBackend) -> None:
    store = store_backend.store
    paris = timezone(timedelta(hours=2))
    created_at = datetime(2025, 3, 1, 14, 30, 15, 123456, tzinfo=paris)

    created = await store.create(
        new_request(created_at=created_at),
        outbox=[card(1), OutboxItem(OutboxKind.CONFIRM_REQUESTER)],
    )
    fetched = await store.get("req1")

    assert fetched == created
    assert fetched is not None
    assert fetched.state is PENDING
    assert (fetched.username, fetched.full_name, fetched.email) == (
        "alice",
        "Alice Liddell",
        "alice@example.com",
    )
    assert fetched.temp_ticket == ticket_for("alice")
    assert fetched.requester_id == "U123"
    assert fetched.justification == "needs dashboards"
    assert fetched.created_at == created_at
    assert fetched.created_at.tzinfo is UTC
    assert fetched.created_at.hour == 12
    assert fetched.updated_at == created_at
    assert fetched.decided_at is None and fetched.lease_expires_at is None
    assert await store.find_active("alice") == fetched
    assert await store.get("nope") is None
    assert await store.find_active("bob") is None
    assert await store.outbox_pending_count() == 2


async def test_naive_datetimes_are_refused(store_backend: StoreBackend) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        await store_backend.store.create(new_request(created_at=datetime(2025, 1, 1)))


@pytest.mark.parametrize("blocking_state", [PENDING, PROVISIONING])
async def test_duplicate_active_username(
    store_backend: StoreBackend, blocking_state: RequestState
) -> None:
    store = store_backend.store
    await store.create(new_request("req1"), outbox=[card()])
    if blocking_state is PROVISIONING:
        await store.transition("req1", from_states=[PENDING], to_state=PROVISIONING, now=T0)

    with pytest.raises(DuplicateRequestError) as info:
        await store.create(new_request("req2"), outbox=[card(2)])

    assert info.value.existing.id == "req1"
    assert info.value.existing.state is blocking_state
    assert ticket_for("alice") not in formatted(info.value)
    assert await store.get("req2") is None
    assert await store.outbox_pending_count() == 1  # the loser's message was rolled back


@pytest.mark.parametrize(
    "final_state",
    [RequestState.DENIED, RequestState.APPROVED, RequestState.EXPIRED, RequestState.CANCELLED],
)
async def test_new_request_allowed_after_final_state(
    store_backend: StoreBackend, final_state: RequestState
) -> None:
    store = store_backend.store
    await store.create(new_request("req1"))
    await store.transition(
        "req1", from_states=[PENDING, PROVISIONING], to_state=final_state, now=T0
    )

    second = await store.create(new_request("req2", created_at=T0 + timedelta(minutes=1)))

    assert second.state is PENDING
    assert (await store.find_active("alice")) == second
    assert (await store.get("req1")).state is final_state  # type: ignore[union-attr]


async def test_concurrent_creates_for_one_username(store_backend: StoreBackend) -> None:
    store = store_backend.new_store(pool_size=20, max_overflow=0)
    results = await asyncio.gather(
        *(store.create(new_request(f"req{i}"), outbox=[card(i)]) for i in range(20)),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, ProvisioningRequest)]
    duplicates = [r for r in results if isinstance(r, DuplicateRequestError)]
    assert len(created) == 1, results
    assert len(duplicates) == 19
    assert {d.existing.id for d in duplicates} == {created[0].id}
    assert await store.outbox_pending_count() == 1


async def test_transition_applies_changes_and_outbox(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request())
    now = T0 + timedelta(minutes=5)

    moved = await store.transition(
        "req1",
        from_states=[PENDING],
        to_state=RequestState.DENIED,
        now=now,
        changes={"decided_by": "U999", "decided_at": now, "deny_reason": "no"},
        outbox=[OutboxItem(OutboxKind.UPDATE_CARD), OutboxItem(OutboxKind.NOTIFY_REQUESTER)],
    )

    assert moved is not None
    assert moved.state is RequestState.DENIED
    assert (moved.decided_by, moved.decided_at, moved.deny_reason) == ("U999", now, "no")
    assert moved.updated_at == now
    assert moved.created_at == T0
    assert await store.get("req1") == moved
    assert [row.kind for row in await outbox_rows(store_backend)] == [
        "update_card",
        "notify_requester",
    ]


async def test_transition_from_wrong_state_or_unknown_id(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request())
    assert (
        await store.transition(
            "req1",
            from_states=[PROVISIONING],
            to_state=RequestState.APPROVED,
            now=T0,
            outbox=[card()],
        )
        is None
    )
    assert (
        await store.transition("nope", from_states=[PENDING], to_state=PROVISIONING, now=T0) is None
    )
    assert await store.transition("req1", from_states=[], to_state=PROVISIONING, now=T0) is None
    assert (await store.get("req1")).state is PENDING  # type: ignore[union-attr]
    assert await store.outbox_pending_count() == 0


@pytest.mark.parametrize("key", ["nonsense", "id", "state", "updated_at"])
async def test_transition_rejects_bad_change_keys(store_backend: StoreBackend, key: str) -> None:
    store = store_backend.store
    await store.create(new_request())
    with pytest.raises(ValueError, match=key):
        await store.transition(
            "req1", from_states=[PENDING], to_state=PROVISIONING, now=T0, changes={key: "x"}
        )
    assert (await store.get("req1")).state is PENDING  # type: ignore[union-attr]


async def test_transition_wins_once_under_concurrency(store_backend: StoreBackend) -> None:
    # A pool as large as the crowd: every call holds its own connection at the same time.
    store = store_backend.new_store(pool_size=20, max_overflow=0)
    await store.create(new_request())

    results = await asyncio.gather(
        *(
            store.transition(
                "req1",
                from_states=[PENDING],
                to_state=PROVISIONING,
                now=T0 + timedelta(seconds=1),
                changes={"lease_owner": f"worker{i}", "decided_by": f"U{i}"},
                outbox=[OutboxItem(OutboxKind.UPDATE_CARD, {"by": i})],
            )
            for i in range(20)
        )
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    final = await store.get("req1")
    assert final == winners[0]
    assert final is not None and final.lease_owner == f"worker{final.decided_by[1:]}"  # type: ignore[index]
    rows = await outbox_rows(store_backend)
    assert len(rows) == 1
    assert rows[0].payload == {"by": int(final.decided_by[1:])}  # type: ignore[index]


async def test_transition_race_between_two_engines(store_backend: StoreBackend) -> None:
    # Two engines, two pools: what two replicas of the bot look like to the database.
    first, second = store_backend.new_store(), store_backend.new_store()
    await first.create(new_request())

    async def click(store: SqlRequestStore, who: str) -> ProvisioningRequest | None:
        return await store.transition(
            "req1",
            from_states=[PENDING],
            to_state=PROVISIONING,
            now=T0,
            changes={"lease_owner": who},
            outbox=[card()],
        )

    results = await asyncio.gather(
        *(
            click(store, f"{name}{i}")
            for i in range(10)
            for name, store in (("a", first), ("b", second))
        )
    )
    assert sum(r is not None for r in results) == 1
    assert await first.outbox_pending_count() == 1


async def test_lease_guards(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request())
    lease_end = T0 + timedelta(minutes=2)
    await store.transition(
        "req1",
        from_states=[PENDING],
        to_state=PROVISIONING,
        now=T0,
        changes={"lease_owner": "w1", "lease_expires_at": lease_end},
    )

    # Someone else's lease: refused, and the refused move owes nothing.
    assert (
        await store.transition(
            "req1",
            from_states=[PROVISIONING],
            to_state=RequestState.APPROVED,
            now=T0,
            lease_owner="w2",
            outbox=[card()],
        )
        is None
    )
    # A takeover before the lease ran out is refused: see
    # test_request_leases_follow_the_database_clock.
    assert await store.list_expired_leases(lease_end) == []
    expired = await store.list_expired_leases(lease_end + timedelta(seconds=1))
    assert [r.id for r in expired] == ["req1"]

    taken = await store.transition(
        "req1",
        from_states=[PROVISIONING],
        to_state=PROVISIONING,
        now=lease_end + timedelta(seconds=1),
        lease_expired=True,  # lease_end is long past by the database's clock
        changes={"lease_owner": "w2", "lease_expires_at": lease_end + timedelta(minutes=2)},
    )
    assert taken is not None and taken.lease_owner == "w2"
    # The old owner has lost it; the new one finishes.
    assert (
        await store.transition(
            "req1",
            from_states=[PROVISIONING],
            to_state=RequestState.APPROVED,
            now=T0,
            lease_owner="w1",
        )
        is None
    )
    done = await store.transition(
        "req1",
        from_states=[PROVISIONING],
        to_state=RequestState.APPROVED,
        now=lease_end + timedelta(seconds=2),
        lease_owner="w2",
        changes={"connect_guid": "guid-1", "lease_owner": None, "lease_expires_at": None},
        outbox=[OutboxItem(OutboxKind.WELCOME)],
    )
    assert done is not None and done.connect_guid == "guid-1" and done.lease_owner is None
    assert await store.outbox_pending_count() == 1
    assert await store.list_expired_leases(lease_end + timedelta(days=1)) == []


async def test_set_card(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request())
    await store.set_card("req1", "C42", "1700000000.000100")
    fetched = await store.get("req1")
    assert fetched is not None
    assert (fetched.card_channel, fetched.card_ts) == ("C42", "1700000000.000100")


# -- outbox ----------------------------------------------------------------------------------


async def test_claim_respects_per_request_order(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(
        new_request("reqA", "alice"),
        outbox=[card(1), OutboxItem(OutboxKind.CONFIRM_REQUESTER, {"n": 2})],
    )
    await store.create(new_request("reqB", "bob"), outbox=[card(3)])

    first = await store.claim_outbox(owner="w1", now=T0, lease_seconds=30)
    assert [(m.request_id, m.payload["n"]) for m in first] == [("reqA", 1), ("reqB", 3)]
    assert all(m.attempts == 1 for m in first)
    assert first[0].kind is OutboxKind.POST_CARD and first[0].created_at == T0
    a1, b1 = first

    # reqA's second message waits for its first, even for another worker.
    assert await store.claim_outbox(owner="w2", now=T0, lease_seconds=30) == []

    await store.outbox_delivered(a1.id, now=T0)
    second = await store.claim_outbox(owner="w2", now=T0, lease_seconds=30)
    assert [(m.request_id, m.payload["n"]) for m in second] == [("reqA", 2)]
    assert second[0].kind is OutboxKind.CONFIRM_REQUESTER

    await store.outbox_delivered(second[0].id, now=T0)
    await store.outbox_delivered(b1.id, now=T0)
    assert await store.outbox_pending_count() == 0
    assert await store.claim_outbox(owner="w1", now=T0 + timedelta(hours=1), lease_seconds=30) == []


async def test_give_up_unblocks_next_message(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request(), outbox=[card(1), card(2)])
    [m1] = await store.claim_outbox(owner="w1", now=T0, lease_seconds=30)

    await store.outbox_give_up(m1.id, now=T0, error="channel_not_found")

    [m2] = await store.claim_outbox(owner="w1", now=T0, lease_seconds=30)
    assert m2.payload == {"n": 2}
    rows = {row.id: row for row in await outbox_rows(store_backend)}
    assert rows[m1.id].failed_at == T0
    assert rows[m1.id].last_error == "channel_not_found"
    assert rows[m1.id].lease_owner is None
    assert await store.outbox_pending_count() == 1


async def test_retry_later(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request(), outbox=[card(1), card(2)])
    [m1] = await store.claim_outbox(owner="w1", now=T0, lease_seconds=30)
    retry_at = T0 + timedelta(seconds=10)

    await store.outbox_retry_later(m1.id, next_attempt_at=retry_at, error="ratelimited")

    # Not due yet, and its successor still waits behind it.
    assert (
        await store.claim_outbox(owner="w1", now=T0 + timedelta(seconds=5), lease_seconds=30) == []
    )
    [again] = await store.claim_outbox(owner="w2", now=retry_at, lease_seconds=30)
    assert again.id == m1.id
    assert again.attempts == 2
    row = next(r for r in await outbox_rows(store_backend) if r.id == m1.id)
    assert row.last_error == "ratelimited"
    assert row.lease_owner == "w2"
    assert row.next_attempt_at == retry_at


async def test_expired_outbox_lease_is_reclaimed(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request(), outbox=[card()])
    [m] = await store.claim_outbox(owner="w1", now=T0, lease_seconds=0.5)
    # The lease is judged by the database's clock: a worker whose own clock runs a day ahead
    # does not take a live delivery over.
    assert await store.claim_outbox(owner="w2", now=T0 + timedelta(days=1), lease_seconds=30) == []
    await asyncio.sleep(0.6)
    [again] = await store.claim_outbox(owner="w2", now=T0, lease_seconds=30)
    assert again.id == m.id and again.attempts == 2


async def test_outbox_lease_is_renewed_by_its_holder_only(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request(), outbox=[card()])
    [m] = await store.claim_outbox(owner="w1", now=T0, lease_seconds=0.5)
    assert not await store.renew_outbox_lease(m.id, owner="w2", lease_seconds=30)
    for _ in range(3):  # 0.9 s in all: longer than the lease, which holds while renewed
        await asyncio.sleep(0.3)
        assert await store.renew_outbox_lease(m.id, owner="w1", lease_seconds=0.5)
        assert await store.claim_outbox(owner="w2", now=T0, lease_seconds=30) == []
    await store.outbox_delivered(m.id, now=T0)
    assert not await store.renew_outbox_lease(m.id, owner="w1", lease_seconds=30)


async def test_request_leases_follow_the_database_clock(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await store.create(new_request())
    claimed = await store.transition(
        "req1",
        from_states=[PENDING],
        to_state=PROVISIONING,
        now=T0,  # the caller's clock says 2025; the lease is set by the database's
        changes={"lease_owner": "w1"},
        lease_seconds=0.6,
    )
    assert claimed is not None and claimed.lease_expires_at is not None
    assert abs(claimed.lease_expires_at - datetime.now(UTC)) < timedelta(seconds=5)
    assert await store.list_expired_leases() == []
    # Neither a takeover nor a renewal by someone else while it is live.
    taken = await store.transition(
        "req1",
        from_states=[PROVISIONING],
        to_state=PROVISIONING,
        now=T0 + timedelta(days=1),
        changes={"lease_owner": "w2"},
        lease_seconds=30,
        lease_expired=True,
    )
    assert taken is None
    assert not await store.renew_lease("req1", owner="w2", lease_seconds=30)

    # The holder marks the PUT as sent (which renews the lease), and renews while it works.
    sent = await store.mark_put_sent("req1", owner="w1", lease_seconds=0.6, now=T0)
    assert sent is not None and sent.put_sent_at is not None
    assert sent.lease_expires_at is not None and sent.lease_expires_at > sent.put_sent_at
    assert await store.mark_put_sent("req1", owner="w2", lease_seconds=30, now=T0) is None
    for _ in range(3):
        await asyncio.sleep(0.3)
        assert await store.renew_lease("req1", owner="w1", lease_seconds=0.6)
    assert await store.list_expired_leases() == []

    # Once it runs out it stays out: no renewal, no PUT, and it is listed for a takeover.
    await asyncio.sleep(0.7)
    assert not await store.renew_lease("req1", owner="w1", lease_seconds=30)
    assert await store.mark_put_sent("req1", owner="w1", lease_seconds=30, now=T0) is None
    assert [r.id for r in await store.list_expired_leases()] == ["req1"]
    taken = await store.transition(
        "req1",
        from_states=[PROVISIONING],
        to_state=PROVISIONING,
        now=T0,
        changes={"lease_owner": "w2"},
        lease_seconds=30,
        lease_expired=True,
    )
    assert taken is not None and taken.lease_owner == "w2"
    assert taken.put_sent_at == sent.put_sent_at, "the next holder knows when the PUT went out"
    with pytest.raises(ValueError, match="lease_seconds"):
        await store.transition(
            "req1",
            from_states=[PROVISIONING],
            to_state=PROVISIONING,
            now=T0,
            changes={"lease_expires_at": T0},
            lease_seconds=1,
        )


async def test_claim_limit_and_payload_round_trip(store_backend: StoreBackend) -> None:
    store = store_backend.store
    payload = {"text": "Grüße ✓", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    for i in range(5):
        await store.create(
            new_request(f"req{i}", f"user{i}"), outbox=[OutboxItem(OutboxKind.WELCOME, payload)]
        )
    claimed = await store.claim_outbox(owner="w", now=T0, lease_seconds=30, limit=3)
    assert len(claimed) == 3
    assert [m.id for m in claimed] == sorted(m.id for m in claimed)
    assert all(m.payload == payload for m in claimed)
    assert await store.claim_outbox(owner="w", now=T0, lease_seconds=30, limit=0) == []
    assert len(await store.claim_outbox(owner="w", now=T0, lease_seconds=30, limit=10)) == 2


async def test_concurrent_claimers_never_share_a_message(store_backend: StoreBackend) -> None:
    for i in range(30):
        await store_backend.store.create(new_request(f"req{i}", f"user{i}"), outbox=[card(i)])
    stores = [store_backend.new_store(pool_size=5, max_overflow=0) for _ in range(2)]

    batches = await asyncio.gather(
        *(
            stores[i % 2].claim_outbox(owner=f"w{i}", now=T0, lease_seconds=60, limit=4)
            for i in range(12)
        )
    )

    ids = [m.id for batch in batches for m in batch]
    assert len(ids) == len(set(ids))
    rows = await outbox_rows(store_backend)
    assert all(row.attempts <= 1 for row in rows)
    assert sum(row.lease_owner is not None for row in rows) == len(ids)
    # Rows nobody got (skipped while locked) are still there for the next round.
    rest = await store_backend.store.claim_outbox(owner="late", now=T0, lease_seconds=60, limit=50)
    assert len(ids) + len(rest) == 30


# -- secrets ---------------------------------------------------------------------------------


async def test_database_errors_never_contain_the_ticket(
    store_backend: StoreBackend, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_backend.new_store(echo=True)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    ticket = ticket_for("alice")
    await store.create(new_request())

    failures: list[Callable[[], object]] = [
        # NOT NULL: PostgreSQL's DETAIL would print the whole row, ticket included.
        lambda: store.create(new_request("req2", "bob", full_name=None)),
        # Same primary key: an IntegrityError about another index.
        lambda: store.create(new_request("req1", "carol")),
        # Too long for the column.
        lambda: store.transition(
            "req1",
            from_states=[PENDING],
            to_state=PROVISIONING,
            now=T0,
            changes={"card_ts": "x" * 100, "temp_ticket": ticket},
        ),
        # Wrong type for the column.
        lambda: store.transition(
            "req1",
            from_states=[PENDING],
            to_state=PROVISIONING,
            now=T0,
            changes={"card_ts": 12345, "last_error": ticket},
        ),
    ]
    raised = 0
    for failure in failures:
        try:
            await failure()  # type: ignore[misc]
        except Exception as exc:
            raised += 1
            assert ticket not in formatted(exc)
            assert ticket_for("bob") not in formatted(exc)
            assert ticket_for("carol") not in formatted(exc)
            params = getattr(exc, "params", None)
            assert params is None or ticket not in repr(params)
    # SQLite stores 100 characters in a VARCHAR(32) and accepts ints in text columns.
    assert raised >= 2
    assert ticket not in caplog.text

    with pytest.raises(TypeError, match="temp_ticket"):
        await store.transition(
            "req1",
            from_states=[PENDING],
            to_state=PROVISIONING,
            now=T0,
            changes={"temp_ticket": 12345},
        )


async def test_sqlite_migrations_run_without_foreign_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bot.store.migrate as migrate_module

    seen: list[int] = []
    real = migrate_module._upgrade_sync

    def spy(connection: sa.Connection) -> None:
        # A batch migration would drop and recreate tables; with foreign keys on, that cascades.
        seen.append(connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one())
        real(connection)

    monkeypatch.setattr(migrate_module, "_upgrade_sync", spy)
    engine = create_engine(":memory:")  # one pooled connection: the one the migration used
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("PRAGMA foreign_keys")) == 1
        assert seen == [0]
    finally:
        await engine.dispose()
