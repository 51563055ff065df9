"""The lifecycle's store methods and timer pass on SQLite and PostgreSQL: listing, reminders
claimed once per period, expiry, cancelling, and two replicas running the same timers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from bot.store.migrate import _alembic_config, current_revision, upgrade
from bot.store.sql_store import SqlRequestStore
from bot.store.tables import outbox, provisioning_requests
from bot.workflow.models import OutboxItem, OutboxKind, ProvisioningRequest
from bot.workflow.outcomes import Decided, Refusal, Refused, RequestList
from bot.workflow.provisioning import Provisioner
from bot.workflow.requests import Requests
from bot.workflow.states import RequestState
from bot.workflow.timers import Timers
from tests.support import store_backends
from tests.support.fake_ports import Approvers
from tests.support.samples import new_request
from tests.support.store_backends import BACKENDS, StoreBackend, open_store_backend

store_backend = store_backends.store_backend

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PENDING = RequestState.PENDING
REMIND = OutboxKind.REMIND_APPROVERS


class NoDirectory:
    """The timer pass, cancel and the lists never talk to Connect."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the directory was used: {name}")


def service(
    store: SqlRequestStore, *, instance_id: str = "a", approvers: Approvers | None = None
) -> Requests:
    return Requests(
        store=store,
        directory=NoDirectory(),  # type: ignore[arg-type]
        approvers=approvers or Approvers("UAPPROVER"),
        provisioner=Provisioner(
            store=store,
            directory=NoDirectory(),  # type: ignore[arg-type]
            instance_id=instance_id,
        ),
        clock=lambda: T0,
    )


def timers(store: SqlRequestStore) -> Timers:
    return Timers(store=store, request_expiry_hours=168, reminder_after_hours=24, clock=lambda: T0)


async def file(
    store: SqlRequestStore, request_id: str, *, at: datetime = T0, card: bool = True
) -> ProvisioningRequest:
    await store.create(new_request(request_id, f"user-{request_id}", created_at=at))
    if card:
        await store.set_card(request_id, "CAPPROVERS", f"1700000000.{len(request_id):06d}")
    request = await store.get(request_id)
    assert request is not None
    return request


async def outbox_kinds(backend: StoreBackend, request_id: str | None = None) -> list[str]:
    statement = sa.select(outbox.c.kind).order_by(outbox.c.id)
    if request_id is not None:
        statement = statement.where(outbox.c.request_id == request_id)
    async with backend.engine.connect() as conn:
        return list((await conn.execute(statement)).scalars())


def ids(requests: Iterable[ProvisioningRequest]) -> list[str]:
    return [r.id for r in requests]


# -- store: listing --------------------------------------------------------------------------


async def test_list_and_count_requests(store_backend: StoreBackend) -> None:
    store = store_backend.store
    for n in range(5):
        await file(store, f"r{n}", at=T0 + n * HOUR)
    await store.transition("r1", from_states=[PENDING], to_state=RequestState.DENIED, now=T0)

    pending = await store.list_requests(states=[PENDING])
    assert ids(pending) == ["r0", "r2", "r3", "r4"]  # oldest first
    assert await store.count_requests(states=[PENDING]) == 4
    assert ids(await store.list_requests(states=[PENDING], limit=2)) == ["r0", "r2"]
    assert await store.list_requests(limit=0) == []

    mine = await store.list_requests(requester_id="U123", newest_first=True, limit=3)
    assert ids(mine) == ["r4", "r3", "r2"]
    assert await store.count_requests(requester_id="U123") == 5
    assert await store.count_requests(requester_id="USOMEONE") == 0

    # created_before is inclusive: due at exactly the expiry instant.
    due = await store.list_requests(states=[PENDING], created_before=T0 + 2 * HOUR)
    assert ids(due) == ["r0", "r2"]
    assert await store.count_requests(states=[PENDING], created_before=T0 + 2 * HOUR) == 2
    assert pending[0].last_reminder_at is None


# -- store: reminders ------------------------------------------------------------------------


async def test_reminders_are_due_once_per_period(store_backend: StoreBackend) -> None:
    store = store_backend.store
    await file(store, "r1")
    await file(store, "nocard", card=False)  # nothing to reply under: never due
    delay = 24 * HOUR

    def due_before(now: datetime) -> datetime:
        return now - delay

    assert await store.list_reminders_due(due_before=due_before(T0 + 23 * HOUR)) == []
    now = T0 + 25 * HOUR
    assert ids(await store.list_reminders_due(due_before=due_before(now))) == ["r1"]
    claimed = await store.claim_reminder(
        "r1", now=now, due_before=due_before(now), outbox=[OutboxItem(REMIND)]
    )
    assert claimed is not None and claimed.last_reminder_at == now
    assert claimed.updated_at == T0, "a reminder is not a change to the request"
    # The same period again, from this or any other process: nothing.
    again = await store.claim_reminder("r1", now=now, due_before=due_before(now))
    assert again is None
    later = T0 + 40 * HOUR
    assert await store.list_reminders_due(due_before=due_before(later)) == []
    assert await store.claim_reminder("r1", now=later, due_before=due_before(later)) is None
    # One delay after the last reminder, the next one is due.
    next_time = now + delay
    assert ids(await store.list_reminders_due(due_before=due_before(next_time))) == ["r1"]
    assert await store.claim_reminder(
        "r1", now=next_time, due_before=due_before(next_time), outbox=[OutboxItem(REMIND)]
    )
    assert await outbox_kinds(store_backend, "r1") == [REMIND, REMIND]

    # Decided requests are never due.
    await store.transition("r1", from_states=[PENDING], to_state=RequestState.DENIED, now=T0)
    far = T0 + 1000 * HOUR
    assert await store.list_reminders_due(due_before=due_before(far)) == []
    assert await store.claim_reminder("r1", now=far, due_before=due_before(far)) is None


async def test_reminder_claim_races_between_engines(store_backend: StoreBackend) -> None:
    stores = [store_backend.store, store_backend.new_store()]
    await file(stores[0], "r1")
    now = T0 + 25 * HOUR
    results = await asyncio.gather(
        *(
            stores[n % 2].claim_reminder(
                "r1", now=now, due_before=now - 24 * HOUR, outbox=[OutboxItem(REMIND)]
            )
            for n in range(10)
        )
    )
    assert sum(r is not None for r in results) == 1
    assert await outbox_kinds(store_backend, "r1") == [REMIND]


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_upgrade_from_0001_keeps_requests(backend_name: str, tmp_path: Path) -> None:
    async with open_store_backend(backend_name, tmp_path, migrate=False) as backend:
        async with backend.engine.begin() as conn:
            await conn.run_sync(
                lambda sync: command.upgrade(_alembic_config(sync), "0001"),
            )
        assert await current_revision(backend.engine) == "0001"
        async with backend.engine.begin() as conn:
            await conn.execute(
                sa.insert(provisioning_requests).values(
                    id="old1",
                    state="pending",
                    requester_id="U1",
                    username="old",
                    full_name="Old Timer",
                    email="old@example.com",
                    temp_ticket="tkt",
                    justification="from before 0002",
                    created_at=T0,
                    updated_at=T0,
                    card_channel="CAPPROVERS",
                    card_ts="1700000000.000100",
                )
            )

        await upgrade(backend.engine)
        request = await backend.store.get("old1")
        assert request is not None and request.last_reminder_at is None
        now = T0 + 25 * HOUR
        assert ids(await backend.store.list_reminders_due(due_before=now - 24 * HOUR)) == ["old1"]


# -- requests: cancel and the lists -----------------------------------------------------------


async def test_only_the_requester_cancels_and_only_while_pending(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    svc = service(store)
    await file(store, "r1")

    for who in ("UOUTSIDER", "UAPPROVER"):
        refused = await svc.cancel("r1", who)
        assert isinstance(refused, Refused) and refused.reason is Refusal.NOT_REQUESTER
    assert (await store.get("r1")).state is PENDING

    outcome = await svc.cancel("r1", "U123")
    assert isinstance(outcome, Decided)
    assert outcome.request.state is RequestState.CANCELLED
    assert outcome.request.decided_by == "U123" and outcome.request.temp_ticket == ""
    assert await outbox_kinds(store_backend, "r1") == [OutboxKind.UPDATE_CARD]

    again = await svc.cancel("r1", "U123")
    assert isinstance(again, Refused) and again.reason is Refusal.ALREADY_DECIDED
    assert again.request.state is RequestState.CANCELLED
    missing = await svc.cancel("nope", "U123")
    assert isinstance(missing, Refused) and missing.reason is Refusal.NOT_FOUND


async def test_pending_list_is_for_approvers_only(store_backend: StoreBackend) -> None:
    store = store_backend.store
    for n in range(4):
        await file(store, f"r{n}", at=T0 + n * HOUR)
    await store.transition("r0", from_states=[PENDING], to_state=RequestState.DENIED, now=T0)

    listed = await service(store).pending_requests("UAPPROVER", limit=2)
    assert isinstance(listed, RequestList)
    assert ids(listed.requests) == ["r1", "r2"] and listed.total == 3

    refused = await service(store).pending_requests("UOUTSIDER", limit=2)
    assert isinstance(refused, Refused) and refused.reason is Refusal.NOT_APPROVER
    broken = service(store, approvers=Approvers(broken=True))
    refused = await broken.pending_requests("UAPPROVER", limit=2)
    assert isinstance(refused, Refused) and refused.reason is Refusal.CANNOT_CHECK

    home = await broken.home("U123", mine_limit=2, waiting_limit=2)
    assert home.waiting is None and home.waiting_refusal is Refusal.CANNOT_CHECK
    assert ids(home.mine.requests) == ["r3", "r2"] and home.mine.total == 4
    home = await service(store).home("UAPPROVER", mine_limit=2, waiting_limit=5)
    assert home.mine.total == 0 and home.waiting is not None
    assert ids(home.waiting.requests) == ["r1", "r2", "r3"]


# -- the timer pass -----------------------------------------------------------------


async def test_timer_pass_expires_then_reminds(store_backend: StoreBackend) -> None:
    store = store_backend.store
    svc = timers(store)
    await file(store, "old", at=T0 - 200 * HOUR)
    await file(store, "young", at=T0 - 30 * HOUR)
    await file(store, "fresh", at=T0 - HOUR)
    await file(store, "busy", at=T0 - 200 * HOUR)
    await store.transition(
        "busy", from_states=[PENDING], to_state=RequestState.PROVISIONING, now=T0
    )

    report = await svc.run(T0)
    assert report.expired == ("old",)
    assert report.reminded == ("young",)  # the expired one is not also reminded about
    old = await store.get("old")
    assert old.state is RequestState.EXPIRED and old.temp_ticket == ""
    assert await outbox_kinds(store_backend, "old") == [
        OutboxKind.UPDATE_CARD,
        OutboxKind.NOTIFY_REQUESTER,
    ]
    assert (await store.get("busy")).state is RequestState.PROVISIONING  # an approval in flight
    assert await outbox_kinds(store_backend, "fresh") == []

    assert await svc.run(T0) == type(report)()  # nothing twice
    assert (await svc.run(T0 + 25 * HOUR)).reminded == ("young", "fresh")


async def test_two_replicas_remind_and_expire_once(store_backend: StoreBackend) -> None:
    replicas = [timers(store_backend.store), timers(store_backend.new_store())]
    for n in range(3):
        await file(store_backend.store, f"r{n}")

    async def both(now: datetime) -> list[str]:
        reports = await asyncio.gather(*(svc.run(now) for svc in replicas))
        return [i for report in reports for i in (*report.reminded, *report.expired)]

    for hours in (25, 25, 30, 49, 49):
        acted = await both(T0 + hours * HOUR)
        assert len(acted) == len(set(acted)), "two replicas acted on the same request"
    kinds = await outbox_kinds(store_backend)
    assert kinds.count(REMIND) == 6  # three requests, two periods each

    acted = await both(T0 + 169 * HOUR)
    assert sorted(acted) == ["r0", "r1", "r2"]
    kinds = await outbox_kinds(store_backend)
    assert kinds.count(OutboxKind.NOTIFY_REQUESTER) == 3 and kinds.count(REMIND) == 6
    assert await both(T0 + 400 * HOUR) == []
