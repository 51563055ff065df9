"""Settling a PUT whose outcome is unclear, and the lease that covers it, against an in-process
directory on SQLite and PostgreSQL: fast, with a schedule of look-ups in tenths of a second."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bot.store.sql_store import SqlRequestStore
from bot.store.tables import outbox
from bot.workflow.models import Account, DirectoryEntry, NewRequest, Person, ProvisioningRequest
from bot.workflow.outcomes import Decided
from bot.workflow.ports import DirectoryProblem, DirectoryRefused, DirectoryUnavailable
from bot.workflow.provisioning import (
    CHECKING_NOTE,
    CLOCK_SKEW_MARGIN,
    UNSETTLED_NOTE,
    Provisioner,
)
from bot.workflow.requests import Requests
from bot.workflow.states import RequestState
from tests.support import store_backends
from tests.support.fake_ports import Approvers
from tests.support.store_backends import StoreBackend

store_backend = store_backends.store_backend

APPROVER = "UAPPROVER"
DELAYS = (0.05, 0.1, 0.15, 0.2)
TIMEOUT = DirectoryUnavailable("Connect did not answer in time")
DOWN = DirectoryUnavailable("Connect failed on its side (503)")
IN_USE = DirectoryRefused(
    DirectoryProblem.USERNAME_TAKEN,
    "Connect refused the request (409, code 8)",
    "The username is already in use.",
    code=8,
)

Answer = Account | None | Exception


class Directory:
    """Connect as the workflow sees it: scripted answers to the PUT and to the look-ups."""

    def __init__(
        self,
        put: Account | Exception | Callable[[], Any],
        lookups: list[Answer] | Callable[[int], Answer],
    ) -> None:
        self.put = put
        self.lookups = lookups
        self.puts = 0
        self.lookup_times: list[float] = []
        self.on_lookup: Callable[[], Any] | None = None

    async def create_account(self, temp_ticket: str) -> Account:
        self.puts += 1
        put = self.put
        if callable(put):
            put = await put()
        if isinstance(put, Exception):
            raise put
        return put

    async def find_account(self, username: str) -> Account | None:
        self.lookup_times.append(asyncio.get_running_loop().time())
        if self.on_lookup is not None:
            await self.on_lookup()
        n = len(self.lookup_times) - 1
        lookups = self.lookups
        answer = lookups(n) if callable(lookups) else lookups[min(n, len(lookups) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def find_entry(self, username: str) -> DirectoryEntry | None:
        raise AssertionError("not expected here")


def account(created: datetime | None) -> Account:
    return Account(guid="guid-julie", username="julie", created_time=created)


def service(
    store: SqlRequestStore, directory: Directory, *, instance_id: str = "a", lease: float = 30
) -> Requests:
    """The workflow's decisions, carried out by a provisioner (`.provisioner`) over `directory`."""
    provisioner = Provisioner(
        store=store,
        directory=directory,  # type: ignore[arg-type]
        instance_id=instance_id,
        lease_seconds=lease,
        settle_delays=DELAYS,
    )
    return Requests(
        store=store,
        directory=directory,  # type: ignore[arg-type]
        approvers=Approvers(APPROVER, "UAPPROVER2"),
        provisioner=provisioner,
    )


async def file(store: SqlRequestStore) -> str:
    request = await store.create(
        NewRequest(
            request_id="r1",
            requester_id="UREQUESTER",
            person=Person("julie", "Julie Jolly", "julie@example.com", "tkt-0123456789"),
            justification="needs it",
            created_at=datetime.now(UTC),
        )
    )
    await store.set_card("r1", "CAPPROVERS", "1700000000.000100")
    return request.id


async def approve(svc: Requests, request_id: str) -> ProvisioningRequest:
    outcome = await svc.approve(request_id, APPROVER)
    assert isinstance(outcome, Decided), outcome
    return outcome.request


async def owed(backend: StoreBackend) -> list[str]:
    async with backend.engine.connect() as conn:
        return list((await conn.execute(sa.select(outbox.c.kind).order_by(outbox.c.id))).scalars())


async def test_an_account_that_appears_while_checking_is_approved(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    directory = Directory(TIMEOUT, [None, None, account(datetime.now(UTC))])
    seen: list[ProvisioningRequest] = []

    async def look_at_the_request() -> None:
        seen.append(await store.get("r1"))  # type: ignore[arg-type]

    directory.on_lookup = look_at_the_request
    request_id = await file(store)
    started = asyncio.get_running_loop().time()

    request = await approve(service(store, directory), request_id)

    assert request.state is RequestState.APPROVED and request.connect_guid == "guid-julie"
    assert request.outcome_note and request.outcome_note.startswith("Created during this approval")
    assert directory.puts == 1
    # Looked again over the schedule, not once at once.
    assert len(directory.lookup_times) == 3
    times = [t - started for t in directory.lookup_times]
    assert all(t >= d for t, d in zip(times, DELAYS[:3], strict=True)), times
    # Meanwhile: still provisioning (no Approve), and the card was told it is being checked.
    assert all(r.state is RequestState.PROVISIONING for r in seen)
    assert all(r.last_error and r.last_error.endswith(CHECKING_NOTE) for r in seen)
    assert "did not answer in time" in (seen[0].last_error or "")
    assert await owed(store_backend) == [
        "update_card",  # approved: creating
        "update_card",  # checking the outcome
        "update_card",
        "notify_requester",
        "welcome",
    ]


async def test_a_second_click_while_checking_changes_nothing(store_backend: StoreBackend) -> None:
    store = store_backend.store
    directory = Directory(TIMEOUT, [None, None, None, account(datetime.now(UTC))])
    svc = service(store, directory)
    refusals = []

    async def second_approver_clicks() -> None:
        refusals.append(await svc.approve("r1", "UAPPROVER2"))

    directory.on_lookup = second_approver_clicks
    request = await approve(svc, await file(store))
    assert request.state is RequestState.APPROVED
    assert directory.puts == 1
    assert [r.reason.value for r in refusals] == ["already_decided"] * 4  # type: ignore[union-attr]


async def test_no_account_after_the_last_look_goes_back_to_pending(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    directory = Directory(TIMEOUT, [None])
    request = await approve(service(store, directory), await file(store))
    assert request.state is RequestState.PENDING
    assert len(directory.lookup_times) == len(DELAYS)
    assert request.last_error == (
        "Connect did not answer in time, and no account was created. Press Approve to try again."
    )
    # That PUT may still be carried out: it stays on record for the next approval.
    assert request.unknown_put_at is not None and request.lease_owner is None
    assert request.put_sent_at is None, "this approval is over"


async def test_a_failed_last_look_leaves_it_for_the_recovery(store_backend: StoreBackend) -> None:
    store = store_backend.store
    directory = Directory(TIMEOUT, [None, None, None, DOWN])
    svc = service(store, directory)
    request = await approve(svc, await file(store))
    assert request.state is RequestState.PROVISIONING
    assert request.last_error == f"Connect did not answer in time. {UNSETTLED_NOTE}"
    # Its lease was let run out, so the next recovery pass (here: this process's) looks again.
    assert [r.id for r in await store.list_expired_leases()] == ["r1"]
    directory.lookups = [account(datetime.now(UTC))]
    settled = await svc.provisioner.recover_expired_leases()
    assert [(r.id, r.state) for r in settled] == [("r1", RequestState.APPROVED)]
    assert directory.puts == 1


@pytest.mark.parametrize(
    ("created_after_unanswered_put", "state"),
    [
        (timedelta(seconds=2), RequestState.APPROVED),
        # Connect's clock may run behind the database's.
        (-CLOCK_SKEW_MARGIN + timedelta(seconds=10), RequestState.APPROVED),
        (-CLOCK_SKEW_MARGIN - timedelta(seconds=10), RequestState.ALREADY_EXISTS),
        (-timedelta(days=30), RequestState.ALREADY_EXISTS),
        # Connect did not say when: the unanswered PUT is taken to have done it.
        (None, RequestState.APPROVED),
    ],
)
async def test_username_in_use_after_an_unanswered_put_is_settled_by_when_it_was_created(
    store_backend: StoreBackend, created_after_unanswered_put: timedelta | None, state: RequestState
) -> None:
    """Approval 1's PUT goes unanswered and the look-ups find nothing (pending again); approval
    2's PUT hears "username in use": the account is the request's own when Connect created it
    after the unanswered PUT."""
    store = store_backend.store
    directory = Directory(TIMEOUT, [None])
    request_id = await file(store)
    svc = service(store, directory)
    first = await approve(svc, request_id)
    assert first.state is RequestState.PENDING and first.put_sent_at is None
    unanswered = first.unknown_put_at
    assert unanswered is not None, "the unanswered PUT stays on record"
    created = (
        None if created_after_unanswered_put is None else unanswered + created_after_unanswered_put
    )
    directory.put = IN_USE
    directory.lookups = [account(created)]
    request = await approve(svc, request_id)
    assert request.state is state and request.connect_guid == "guid-julie"
    kinds = await owed(store_backend)
    assert ("welcome" in kinds) is (state is RequestState.APPROVED)
    if state is RequestState.APPROVED:
        assert "username was in use" in (request.outcome_note or "")
    assert directory.puts == 2


@pytest.mark.parametrize("created_after_put", [timedelta(seconds=2), -timedelta(minutes=1), None])
async def test_username_in_use_for_the_only_put_is_someone_elses_account(
    store_backend: StoreBackend, created_after_put: timedelta | None
) -> None:
    """Connect refused the request's only PUT on the spot: whenever the account was made (the
    person's own first login while the request waited, say), this request did not make it."""
    store = store_backend.store
    directory = Directory(IN_USE, lambda n: None)
    request_id = await file(store)

    async def answer_in_use() -> Exception:
        sent = (await store.get(request_id)).put_sent_at  # type: ignore[union-attr]
        assert sent is not None, "put_sent_at is written before the PUT goes out"
        created = None if created_after_put is None else sent + created_after_put
        directory.lookups = [account(created)]
        return IN_USE

    directory.put = answer_in_use
    request = await approve(service(store, directory), request_id)
    assert request.state is RequestState.ALREADY_EXISTS and request.connect_guid == "guid-julie"
    assert "welcome" not in await owed(store_backend)


async def test_an_account_older_than_the_put_is_not_taken_for_created(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    directory = Directory(TIMEOUT, [account(datetime.now(UTC) - timedelta(days=2))])
    request = await approve(service(store, directory), await file(store))
    assert request.state is RequestState.ALREADY_EXISTS
    assert "before this approval asked Connect" in (request.outcome_note or "")
    assert "welcome" not in await owed(store_backend)


async def test_a_slow_put_keeps_its_lease_against_every_recovery(
    store_backend: StoreBackend,
) -> None:
    """A PUT that takes longer than the whole lease: renewed, never taken over (not by the
    holder's own recovery pass, not by another replica's), one PUT."""
    store = store_backend.store
    gate = asyncio.Event()

    async def slow_put() -> Account:
        await gate.wait()
        return account(datetime.now(UTC))

    directory = Directory(slow_put, [None])
    holder = service(store, directory, instance_id="a", lease=0.6)
    other = service(store_backend.new_store(), directory, instance_id="b", lease=0.6)
    request_id = await file(store)
    approving = asyncio.create_task(approve(holder, request_id))
    for _ in range(4):  # 1.6 s: well past the 0.6 s lease
        await asyncio.sleep(0.4)
        assert await holder.provisioner.recover_expired_leases() == []
        assert await other.provisioner.recover_expired_leases() == []
        assert (await store.get(request_id)).lease_owner == "a"  # type: ignore[union-attr]
    gate.set()
    request = await approving
    assert request.state is RequestState.APPROVED and directory.puts == 1


async def test_no_put_without_a_live_lease(store_backend: StoreBackend) -> None:
    store = store_backend.store
    directory = Directory(account(datetime.now(UTC)), [None])
    svc = service(store, directory)
    svc.provisioner.lease = timedelta(0)  # ran out the moment it was taken (a stalled process)
    request = await approve(svc, await file(store))
    assert directory.puts == 0
    assert request.state is RequestState.PROVISIONING
    svc.provisioner.lease = timedelta(seconds=30)
    [settled] = await svc.provisioner.recover_expired_leases()
    assert settled.state is RequestState.PENDING and directory.puts == 0


async def test_recovery_after_a_crash_compares_with_put_sent_at(
    store_backend: StoreBackend,
) -> None:
    """The holder died after sending the PUT; another replica finds an account that is older
    than that PUT: it already existed, nobody is welcomed to it."""
    store = store_backend.store
    request_id = await file(store)
    now = datetime.now(UTC)
    await store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.PROVISIONING,
        now=now,
        changes={"lease_owner": "dead:1", "decided_by": APPROVER, "decided_at": now},
        lease_seconds=30,
    )
    sent = await store.mark_put_sent(request_id, owner="dead:1", lease_seconds=0, now=now)
    assert sent is not None and sent.put_sent_at is not None
    directory = Directory(TIMEOUT, [account(sent.put_sent_at - timedelta(hours=1))])
    await asyncio.sleep(0.01)
    [settled] = await service(
        store, directory, instance_id="b"
    ).provisioner.recover_expired_leases()
    assert settled.state is RequestState.ALREADY_EXISTS and directory.puts == 0
    assert len(directory.lookup_times) == 1
    assert await owed(store_backend) == ["update_card", "notify_requester"]


async def test_a_refused_put_forgets_when_it_was_sent(store_backend: StoreBackend) -> None:
    store = store_backend.store
    seats = DirectoryRefused(
        DirectoryProblem.OTHER, "Connect refused the request (400, code 64)", "No seats.", code=64
    )
    directory = Directory(seats, [None])
    request = await approve(service(store, directory), await file(store))
    assert request.state is RequestState.PENDING and request.put_sent_at is None


async def crashed_holder(store: SqlRequestStore, request_id: str, *, sent: bool) -> None:
    """A holder that claimed the request and died, before or after sending its PUT."""
    now = datetime.now(UTC)
    await store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.PROVISIONING,
        now=now,
        changes={"lease_owner": "dead:1", "decided_by": APPROVER, "decided_at": now},
        lease_seconds=0 if not sent else 30,
    )
    if sent:
        assert await store.mark_put_sent(request_id, owner="dead:1", lease_seconds=0, now=now)
    await asyncio.sleep(0.01)


async def test_recovery_when_no_put_went_out_credits_no_account(
    store_backend: StoreBackend,
) -> None:
    """The holder died before its PUT: an account found since is not this request's doing
    (it already existed), and none found means nothing was created."""
    store = store_backend.store
    request_id = await file(store)
    await crashed_holder(store, request_id, sent=False)
    directory = Directory(TIMEOUT, [account(datetime.now(UTC))])
    [settled] = await service(
        store, directory, instance_id="b"
    ).provisioner.recover_expired_leases()
    assert settled.state is RequestState.ALREADY_EXISTS and directory.puts == 0
    assert "welcome" not in await owed(store_backend)


async def test_recovery_when_no_put_went_out_and_no_account_offers_approve_again(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    request_id = await file(store)
    await crashed_holder(store, request_id, sent=False)
    directory = Directory(TIMEOUT, [None])
    [settled] = await service(
        store, directory, instance_id="b"
    ).provisioner.recover_expired_leases()
    assert settled.state is RequestState.PENDING and directory.puts == 0
    assert settled.last_error is not None and "before it asked Connect" in settled.last_error
    assert settled.unknown_put_at is None


async def test_an_unanswered_put_stays_on_record_through_a_later_refusal(
    store_backend: StoreBackend,
) -> None:
    """Approval 1's PUT goes unanswered; approval 2's is refused (no seats); approval 3 hears
    "username in use" for the account approval 1's PUT made late: it is this request's."""
    store = store_backend.store
    request_id = await file(store)
    svc = service(store, Directory(TIMEOUT, [None]))
    first = await approve(svc, request_id)
    assert first.state is RequestState.PENDING and first.unknown_put_at is not None
    seats = DirectoryRefused(
        DirectoryProblem.OTHER, "Connect refused the request (400, code 64)", "No seats.", code=64
    )
    svc.provisioner.directory = Directory(seats, [None])  # type: ignore[assignment]
    second = await approve(svc, request_id)
    assert second.state is RequestState.PENDING and second.unknown_put_at == first.unknown_put_at
    late = account(first.unknown_put_at + timedelta(seconds=3))
    svc.provisioner.directory = Directory(IN_USE, [late])  # type: ignore[assignment]
    third = await approve(svc, request_id)
    assert third.state is RequestState.APPROVED
    assert "welcome" in await owed(store_backend)


async def test_recovery_passes_against_a_down_connect_owe_one_card_update(
    store_backend: StoreBackend,
) -> None:
    """Each pass takes the request over, cannot look, and lets it go again: the card says so
    once, not once per pass (chat.update is rate limited)."""
    store = store_backend.store
    request_id = await file(store)
    await crashed_holder(store, request_id, sent=True)
    provisioner = service(store, Directory(TIMEOUT, [DOWN]), instance_id="b").provisioner
    for _ in range(4):
        [settled] = await provisioner.recover_expired_leases()
        assert settled.state is RequestState.PROVISIONING
        await asyncio.sleep(0.01)
    assert (await owed(store_backend)).count("update_card") == 1


async def test_a_released_lease_cannot_be_renewed_by_a_late_heartbeat(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    directory = Directory(TIMEOUT, [None, None, None, DOWN])
    request = await approve(service(store, directory), await file(store))
    assert request.state is RequestState.PROVISIONING and request.lease_owner is None
    assert not await store.renew_lease(request.id, owner="a", lease_seconds=30)


def test_a_recovering_replica_looks_until_connect_would_have_given_up() -> None:
    provisioner = Provisioner(
        store=None,  # type: ignore[arg-type]  (no store needed to plan the look-ups)
        directory=None,  # type: ignore[arg-type]
        instance_id="b",
        lease_seconds=30,
        settle_delays=(1.0, 2.0, 3.0, 4.0),  # CONNECT_TIMEOUT 2 s: patience 6 s after the PUT
    )
    taken_at = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)  # the database's clock at takeover

    def taken(put_sent_at: datetime) -> ProvisioningRequest:
        return ProvisioningRequest(
            id="r1",
            state=RequestState.PROVISIONING,
            requester_id="U1",
            username="julie",
            full_name="",
            email="",
            temp_ticket="t",
            put_sent_at=put_sent_at,
            lease_expires_at=taken_at + timedelta(seconds=30),
        )

    assert provisioner._delays_after(taken(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))) == (0.0,)
    delays = provisioner._delays_after(taken(datetime(2026, 1, 1, 12, 0, 8, tzinfo=UTC)))
    assert delays == (0.0, 4.0)


async def test_an_answered_put_is_never_taken_for_an_unanswered_one(
    store_backend: StoreBackend,
) -> None:
    """Connect answers "username in use", the look-up fails, the holder lets the request go:
    the recovery that finds an account a minute older than the PUT does not credit it (that
    PUT was answered: it made nothing)."""
    store = store_backend.store
    request_id = await file(store)
    svc = service(store, Directory(IN_USE, [DOWN]))
    first = await approve(svc, request_id)
    assert first.state is RequestState.PROVISIONING and first.put_sent_at is None
    assert first.unknown_put_at is None
    svc.provisioner.directory = Directory(  # type: ignore[assignment]
        IN_USE, [account(datetime.now(UTC) - timedelta(minutes=1))]
    )
    [settled] = await svc.provisioner.recover_expired_leases()
    assert settled.state is RequestState.ALREADY_EXISTS
    assert "welcome" not in await owed(store_backend)


async def test_an_account_made_long_after_an_unanswered_put_is_not_its_doing(
    store_backend: StoreBackend,
) -> None:
    """Approval 1 went unanswered and found nothing; days later the person logged in and
    Connect made their account; approval 2 hears "username in use": already there."""
    store = store_backend.store
    request_id = await file(store)
    svc = service(store, Directory(TIMEOUT, [None]))
    first = await approve(svc, request_id)
    assert first.unknown_put_at is not None
    later = account(first.unknown_put_at + timedelta(days=3))
    svc.provisioner.directory = Directory(IN_USE, [later])  # type: ignore[assignment]
    second = await approve(svc, request_id)
    assert second.state is RequestState.ALREADY_EXISTS
    assert "long after" in (second.outcome_note or "")


async def test_a_look_up_refused_for_good_says_why_on_the_card(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    refused_look = DirectoryRefused(
        DirectoryProblem.NOT_PERMITTED,
        "Connect refused the request (401, code 24)",
        "Connect rejected the bot's API key (Connect code 24). Set a valid CONNECT_API_KEY.",
        code=24,
    )
    request = await approve(service(store, Directory(TIMEOUT, [refused_look])), await file(store))
    assert request.state is RequestState.PROVISIONING
    assert "CONNECT_API_KEY" in (request.last_error or "")


async def test_a_failing_recovery_does_not_stop_the_others(store_backend: StoreBackend) -> None:
    store = store_backend.store
    for request_id in ("r1", "r2"):
        await store.create(
            NewRequest(
                request_id=request_id,
                requester_id="UREQUESTER",
                person=Person(f"user-{request_id}", "U", "u@example.com", "tkt-0123456789"),
                justification="needs it",
                created_at=datetime.now(UTC),
            )
        )
        await crashed_holder(store, request_id, sent=False)
    svc = service(store, Directory(account(datetime.now(UTC)), [None]))
    real = svc.provisioner._recover

    async def recover(stuck: ProvisioningRequest) -> ProvisioningRequest | None:
        if stuck.id == "r1":
            raise RuntimeError("boom")
        return await real(stuck)

    svc.provisioner._recover = recover  # type: ignore[method-assign]
    settled = await svc.provisioner.recover_expired_leases()
    assert [r.id for r in settled] == ["r2"]
