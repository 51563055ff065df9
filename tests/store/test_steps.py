"""Requests with kinds and steps, on SQLite and PostgreSQL: a role asked for at filing, chosen at
approval and set after the account as a step of its own; role changes; a failed step and its
retry; a crash between two steps. Connect is an in-process directory that records what it did."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from bot.store.migrate import _alembic_config, upgrade
from bot.store.sql_store import SqlRequestStore
from bot.store.tables import outbox
from bot.workflow.models import (
    Account,
    DirectoryCapabilities,
    DirectoryEntry,
    NewRequest,
    OutboxKind,
    Person,
    ProvisioningRequest,
    RequestKind,
    StepAction,
    StepStatus,
    SubjectLink,
)
from bot.workflow.outcomes import (
    Decided,
    Duplicate,
    Filed,
    FileProblem,
    NotFiled,
    Refusal,
    Refused,
    RoleRaised,
)
from bot.workflow.ports import (
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
    DuplicateRequestError,
    PersonLookupUnavailable,
)
from bot.workflow.provisioning import Provisioner
from bot.workflow.requests import Requests
from bot.workflow.states import RequestState
from tests.support import store_backends
from tests.support.fake_ports import Approvers
from tests.support.old_rows import insert_old_request
from tests.support.store_backends import BACKENDS, StoreBackend, open_store_backend

store_backend = store_backends.store_backend

APPROVER, APPROVER2, REQUESTER, OUTSIDER = "UAPPROVER", "UAPPROVER2", "UREQUESTER", "UOUTSIDER"
DELAYS = (0.02, 0.04)
GUID = "0b6d1a5e-1111-4222-8333-444455556666"
ROLE_REFUSED = DirectoryRefused(
    DirectoryProblem.NOT_PERMITTED,
    "Connect refused the request (403, code 23)",
    "The bot's Connect key may not change roles: it needs an administrator's key.",
    code=23,
)
TIMEOUT = DirectoryUnavailable("Connect did not answer in time")


class Connect:
    """The directory and accounts, as the workflow sees them; records every change."""

    def __init__(
        self,
        *,
        default_role: str = "viewer",
        key_role: str = "administrator",
        provider_owns_roles: bool = False,
    ) -> None:
        self.default_role = default_role
        self.key_role_value = key_role
        self.provider_owns_roles = provider_owns_roles
        self.directory = {"julie": DirectoryEntry("julie", "Julie", "Jolly", "j@example.com")}
        self.accounts: dict[str, Account] = {}
        self.creates = 0
        self.role_calls: list[str] = []  # every set_role call, answered or not
        self.roles_applied: list[str] = []  # the role changes Connect carried out
        # Scripted behaviour of the next set_role calls: "ok", an exception, "hang" (never
        # answers, nothing done), "apply-then-hang", "apply-then-timeout".
        self.set_role_script: list[Any] = []
        self.get_account_script: list[Any] = []
        self.hung = asyncio.Event()

    async def capabilities(self) -> DirectoryCapabilities:
        return DirectoryCapabilities(provider="LDAP", provider_owns_roles=self.provider_owns_roles)

    async def key_role(self) -> str | None:
        return self.key_role_value

    async def find_entry(self, username: str) -> DirectoryEntry | None:
        entry = self.directory.get(username)
        if entry is None:
            return None
        account = self.accounts.get(username)
        return DirectoryEntry(
            username=entry.username,
            first_name=entry.first_name,
            last_name=entry.last_name,
            email=entry.email,
            guid=account.guid if account else None,
            temp_ticket=f"tkt-{username}",
        )

    async def create_account(self, temp_ticket: str) -> Account:
        self.creates += 1
        username = temp_ticket.removeprefix("tkt-")
        account = Account(
            guid=GUID,
            username=username,
            user_role=self.default_role,
            created_time=datetime.now(UTC),
        )
        self.accounts[username] = account
        return account

    async def find_account(self, username: str) -> Account | None:
        return self.accounts.get(username)

    async def get_account(self, guid: str) -> Account | None:
        if self.get_account_script:
            scripted = self.get_account_script.pop(0)
            if isinstance(scripted, Exception):
                raise scripted
        return next((a for a in self.accounts.values() if a.guid == guid), None)

    async def set_role(self, guid: str, role: str) -> Account:
        self.role_calls.append(role)
        script = self.set_role_script.pop(0) if self.set_role_script else "ok"
        if isinstance(script, Exception):
            raise script
        if script == "hang":
            self.hung.set()
            await asyncio.Event().wait()
        account = next(a for a in self.accounts.values() if a.guid == guid)
        changed = Account(
            guid=account.guid,
            username=account.username,
            user_role=role,
            created_time=account.created_time,
        )
        self.accounts[account.username] = changed
        self.roles_applied.append(role)
        if script == "apply-then-hang":
            self.hung.set()
            await asyncio.Event().wait()
        if script == "apply-then-timeout":
            raise TIMEOUT
        return changed


def service(
    store: SqlRequestStore,
    connect: Connect,
    *,
    instance_id: str = "a",
    lease: float = 30,
    roles: tuple[str, ...] = ("viewer", "publisher"),
) -> Requests:
    provisioner = Provisioner(
        store=store,
        directory=connect,  # type: ignore[arg-type]
        instance_id=instance_id,
        lease_seconds=lease,
        settle_delays=DELAYS,
    )
    return Requests(
        store=store,
        directory=connect,  # type: ignore[arg-type]
        approvers=Approvers(APPROVER, APPROVER2),
        provisioner=provisioner,
        requestable_roles=roles,
    )


async def file(svc: Requests, role: str | None = None, username: str = "julie") -> str:
    outcome = await svc.file_request(
        requester_id=REQUESTER, username=username, justification="needs it", role=role
    )
    assert isinstance(outcome, Filed), outcome
    return outcome.request.id


async def approved(svc: Requests, request_id: str, role: str | None = None) -> ProvisioningRequest:
    outcome = await svc.approve(request_id, APPROVER, role)
    assert isinstance(outcome, Decided), outcome
    return outcome.request


async def owed(backend: StoreBackend, request_id: str) -> list[str]:
    async with backend.engine.connect() as conn:
        kinds = await conn.execute(
            sa.select(outbox.c.kind).where(outbox.c.request_id == request_id).order_by(outbox.c.id)
        )
        return list(kinds.scalars())


def statuses(request: ProvisioningRequest) -> list[tuple[str, str]]:
    return [(step.action.value, step.status.value) for step in request.steps]


# -- filing ------------------------------------------------------------------------------------


async def test_a_new_account_request_asking_for_a_role_carries_two_steps(
    store_backend: StoreBackend,
) -> None:
    svc = service(store_backend.store, Connect())
    assert await svc.roles_offered() == ("viewer", "publisher")
    request = await store_backend.store.get(await file(svc, "publisher"))
    assert request is not None
    assert request.kind is RequestKind.NEW_ACCOUNT and request.role_asked == "publisher"
    assert statuses(request) == [("create_account", "pending"), ("set_role", "pending")]


async def test_no_role_chosen_means_the_first_offered(store_backend: StoreBackend) -> None:
    svc = service(store_backend.store, Connect(), roles=("publisher", "administrator"))
    request = await store_backend.store.get(await file(svc))
    assert request is not None and request.role_asked == "publisher"


@pytest.mark.parametrize(
    "settings",
    [{"provider_owns_roles": True}, {"key_role": "publisher"}],
    ids=["the provider owns roles", "a publisher's key"],
)
async def test_without_role_management_the_request_gets_connects_default_role(
    store_backend: StoreBackend, settings: dict[str, Any]
) -> None:
    connect = Connect(**settings)
    svc = service(store_backend.store, connect)
    assert await svc.roles_offered() == ()
    refused = await svc.file_request(
        requester_id=REQUESTER, username="julie", justification="x", role="viewer"
    )
    assert refused == NotFiled(FileProblem.ROLE_NOT_REQUESTABLE)
    request = await store_backend.store.get(await file(svc))
    assert request is not None and request.role_asked is None
    assert statuses(request) == [("create_account", "pending")]
    done = await approved(svc, request.id)
    assert done.state is RequestState.APPROVED and connect.role_calls == []
    assert done.role_before == "viewer", "the role Connect gave is on record"


@pytest.mark.parametrize("role", ["administrator", "owner", ""])
async def test_a_role_not_offered_is_refused_at_filing(
    store_backend: StoreBackend, role: str
) -> None:
    svc = service(store_backend.store, Connect())
    outcome = await svc.file_request(
        requester_id=REQUESTER, username="julie", justification="x", role=role
    )
    assert outcome == NotFiled(FileProblem.ROLE_NOT_REQUESTABLE)


# -- carrying it out ---------------------------------------------------------------------------


async def test_a_publisher_account_is_created_once_and_its_role_set_once(
    store_backend: StoreBackend,
) -> None:
    connect = Connect(default_role="viewer")
    svc = service(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    done = await approved(svc, request_id)
    assert done.state is RequestState.APPROVED
    assert connect.creates == 1 and connect.role_calls == ["publisher"]
    assert connect.accounts["julie"].user_role == "publisher"
    assert done.role_before == "viewer" and done.role_granted == "publisher"
    assert statuses(done) == [("create_account", "done"), ("set_role", "done")]
    assert all(step.done_at is not None for step in done.steps)
    assert await owed(store_backend, request_id) == [
        OutboxKind.POST_CARD,
        OutboxKind.UPDATE_CARD,
        OutboxKind.UPDATE_CARD,
        OutboxKind.NOTIFY_REQUESTER,
        OutboxKind.WELCOME,
    ]


async def test_no_role_call_when_connect_gave_the_role_already(
    store_backend: StoreBackend,
) -> None:
    connect = Connect(default_role="publisher")
    svc = service(store_backend.store, connect)
    done = await approved(svc, await file(svc, "publisher"))
    assert done.state is RequestState.APPROVED and connect.role_calls == []
    role_step = done.step(StepAction.SET_ROLE)
    assert role_step is not None and role_step.status is StepStatus.DONE
    assert role_step.note and "already" in role_step.note


async def test_an_approver_may_grant_a_lower_role(store_backend: StoreBackend) -> None:
    connect = Connect(default_role="administrator")
    svc = service(store_backend.store, connect)
    done = await approved(svc, await file(svc, "publisher"), role="viewer")
    assert done.role_asked == "publisher" and done.role_granted == "viewer"
    assert connect.role_calls == ["viewer"]


async def test_raising_the_role_is_a_new_question(store_backend: StoreBackend) -> None:
    connect = Connect()
    svc = service(store_backend.store, connect, roles=("viewer", "publisher", "administrator"))
    request_id = await file(svc, "viewer")
    raised = await svc.approve(request_id, APPROVER, "administrator")
    assert isinstance(raised, RoleRaised)
    assert raised.request.state is RequestState.PENDING
    assert raised.request.role_asked == "administrator"
    assert raised.request.raised_by == APPROVER and raised.request.raised_from == "viewer"
    assert connect.creates == 0, "nothing was carried out"
    assert (await owed(store_backend, request_id))[-2:] == [
        OutboxKind.UPDATE_CARD,
        OutboxKind.NOTIFY_REQUESTER,
    ], "the card and the requester are told"
    done = await approved(svc, request_id)
    assert done.role_granted == "administrator" and connect.role_calls == ["administrator"]


async def test_an_approval_of_the_role_shown_loses_to_a_raise_in_between(
    store_backend: StoreBackend,
) -> None:
    """Approver A opens the confirmation (Viewer asked); B raises to Publisher; A submits
    Viewer. A answered a question that is no longer asked: refused, nothing carried out."""
    connect = Connect()
    svc = service(store_backend.store, connect)
    request_id = await file(svc, "viewer")
    raised = await svc.approve(request_id, APPROVER2, "publisher")
    assert isinstance(raised, RoleRaised)
    late = await svc.approve(request_id, APPROVER, "viewer", seen="viewer")
    assert isinstance(late, Refused) and late.reason is Refusal.ROLE_CHANGED
    assert connect.creates == 0
    request = await store_backend.store.get(request_id)
    assert request is not None and request.state is RequestState.PENDING
    # The store's guard holds too when the raise lands between the check and the update.
    moved = await store_backend.store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.PROVISIONING,
        now=datetime.now(UTC),
        expect={"role_asked": "viewer"},
    )
    assert moved is None
    done = await svc.approve(request_id, APPROVER, "publisher", seen="publisher")
    assert isinstance(done, Decided) and done.request.role_granted == "publisher"


@pytest.mark.parametrize("role", ["administrator", "owner", "Publisher"])
async def test_a_role_from_slack_outside_requestable_roles_is_refused(
    store_backend: StoreBackend, role: str
) -> None:
    connect = Connect()
    svc = service(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    outcome = await svc.approve(request_id, APPROVER, role)
    assert isinstance(outcome, Refused) and outcome.reason is Refusal.ROLE_NOT_REQUESTABLE
    request = await store_backend.store.get(request_id)
    assert request is not None and request.state is RequestState.PENDING
    assert connect.creates == 0


async def test_no_role_may_be_chosen_for_a_request_without_a_role_step(
    store_backend: StoreBackend,
) -> None:
    connect = Connect(key_role="publisher")
    svc = service(store_backend.store, connect)
    outcome = await svc.approve(await file(svc), APPROVER, "viewer")
    assert isinstance(outcome, Refused) and outcome.reason is Refusal.ROLE_NOT_REQUESTABLE


async def test_an_account_there_already_keeps_its_role(store_backend: StoreBackend) -> None:
    connect = Connect()
    svc = service(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    connect.accounts["julie"] = Account(guid=GUID, username="julie", user_role="administrator")

    async def taken(temp_ticket: str) -> Account:
        connect.creates += 1
        raise DirectoryRefused(DirectoryProblem.USERNAME_TAKEN, "in use", "In use.", code=8)

    connect.create_account = taken  # type: ignore[method-assign]
    done = await approved(svc, request_id)
    assert done.state is RequestState.ALREADY_EXISTS
    assert connect.role_calls == [], "never demote an account this request did not create"
    assert statuses(done) == [("create_account", "skipped"), ("set_role", "skipped")]
    # The record says what is true: nothing was granted; the account kept its role.
    assert done.role_granted is None and done.role_before == "administrator"


# -- a failed step, and its retry ------------------------------------------------------------


async def test_a_refused_role_leaves_the_account_done_and_the_request_incomplete(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    connect.set_role_script = [ROLE_REFUSED]
    svc = service(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    request = await approved(svc, request_id)
    assert request.state is RequestState.INCOMPLETE
    assert statuses(request) == [("create_account", "done"), ("set_role", "failed")]
    failed = request.failed_step
    assert failed is not None and failed.error == ROLE_REFUSED.explanation
    assert request.last_error and "setting its role failed" in request.last_error
    assert request.connect_guid == GUID and request.lease_owner is None
    assert OutboxKind.WELCOME not in await owed(store_backend, request_id)

    for who, reason in ((REQUESTER, Refusal.SELF_APPROVAL), (OUTSIDER, Refusal.NOT_APPROVER)):
        refused = await svc.retry(request_id, who)
        assert isinstance(refused, Refused) and refused.reason is reason
    assert connect.role_calls == ["publisher"]

    done = await svc.retry(request_id, APPROVER2)
    assert isinstance(done, Decided) and done.request.state is RequestState.APPROVED
    assert connect.creates == 1, "the done step is not repeated"
    assert connect.role_calls == ["publisher", "publisher"]
    assert statuses(done.request) == [("create_account", "done"), ("set_role", "done")]
    assert (await owed(store_backend, request_id))[-2:] == [
        OutboxKind.NOTIFY_REQUESTER,
        OutboxKind.WELCOME,
    ]
    again = await svc.retry(request_id, APPROVER2)
    assert isinstance(again, Refused) and again.reason is Refusal.NOTHING_TO_RETRY


async def test_a_retry_looks_first_and_does_not_set_a_role_already_there(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    connect.set_role_script = [ROLE_REFUSED]
    svc = service(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    assert (await approved(svc, request_id)).state is RequestState.INCOMPLETE
    # An administrator fixed it in Connect's dashboard meanwhile.
    connect.accounts["julie"] = Account(guid=GUID, username="julie", user_role="publisher")
    done = await svc.retry(request_id, APPROVER)
    assert isinstance(done, Decided) and done.request.state is RequestState.APPROVED
    assert connect.role_calls == ["publisher"], "no second call"


async def test_concurrent_retries_set_the_role_once(store_backend: StoreBackend) -> None:
    connect = Connect()
    connect.set_role_script = [ROLE_REFUSED]
    svc = service(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    await approved(svc, request_id)
    outcomes = await asyncio.gather(
        svc.retry(request_id, APPROVER), svc.retry(request_id, APPROVER2)
    )
    assert sum(isinstance(o, Decided) for o in outcomes) == 1
    assert connect.roles_applied == ["publisher"]


async def test_an_unanswered_role_call_is_settled_by_looking(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    connect.set_role_script = ["apply-then-timeout"]
    svc = service(store_backend.store, connect)
    done = await approved(svc, await file(svc, "publisher"))
    assert done.state is RequestState.APPROVED
    assert connect.role_calls == ["publisher"], "looked, did not call again"


async def test_an_unanswered_role_call_that_did_nothing_is_incomplete(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    connect.set_role_script = [TIMEOUT]
    svc = service(store_backend.store, connect)
    request = await approved(svc, await file(svc, "publisher"))
    assert request.state is RequestState.INCOMPLETE
    assert request.last_error and "still had the role viewer" in request.last_error


async def test_an_unanswered_role_call_nobody_can_check_is_left_for_recovery(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    connect = Connect()
    connect.set_role_script = ["apply-then-timeout"]
    connect.get_account_script = [TIMEOUT] * len(DELAYS)
    svc = service(store, connect)
    request = await approved(svc, await file(svc, "publisher"))
    assert request.state is RequestState.PROVISIONING and request.lease_owner is None
    recovered = await service(store, connect, instance_id="b").provisioner.recover_expired_leases()
    assert [r.state for r in recovered] == [RequestState.APPROVED]
    assert connect.role_calls == ["publisher"] and connect.creates == 1


# -- a crash between two steps ----------------------------------------------------------------


async def test_an_incomplete_request_can_be_closed_as_it_stands(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    connect.set_role_script = [ROLE_REFUSED]
    svc = service(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    assert (await approved(svc, request_id)).state is RequestState.INCOMPLETE
    # Still the person's active request: nothing else is filed for them meanwhile.
    again = await svc.file_request(requester_id=OUTSIDER, username="julie", justification="x")
    assert isinstance(again, Duplicate)
    for who, reason in ((REQUESTER, Refusal.SELF_APPROVAL), (OUTSIDER, Refusal.NOT_APPROVER)):
        refused = await svc.close(request_id, who)
        assert isinstance(refused, Refused) and refused.reason is reason
    closed = await svc.close(request_id, APPROVER2)
    assert isinstance(closed, Decided)
    request = closed.request
    assert request.state is RequestState.CLOSED and request.closed_by == APPROVER2
    assert request.outcome_note and "role in Connect: Viewer" in request.outcome_note
    assert connect.role_calls == ["publisher"], "closing changes nothing in Connect"
    assert (await owed(store_backend, request_id))[-2:] == [
        OutboxKind.UPDATE_CARD,
        OutboxKind.NOTIFY_REQUESTER,
    ]
    retried = await svc.retry(request_id, APPROVER)
    assert isinstance(retried, Refused) and retried.reason is Refusal.NOTHING_TO_RETRY
    assert isinstance(
        await svc.file_request(requester_id=OUTSIDER, username="julie", justification="x"),
        NotFiled,
    ), "the person has an account now: no new-account request"


async def test_a_retry_of_a_role_no_longer_requestable_is_refused(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    connect = Connect()
    connect.set_role_script = [ROLE_REFUSED]
    request_id = await file(service(store, connect), "publisher")
    await approved(service(store, connect), request_id)
    narrower = service(store, connect, roles=("viewer",))  # REQUESTABLE_ROLES changed since
    refused = await narrower.retry(request_id, APPROVER)
    assert isinstance(refused, Refused) and refused.reason is Refusal.ROLE_NOT_REQUESTABLE
    assert connect.role_calls == ["publisher"]


async def test_a_role_change_whose_call_went_unanswered_cannot_be_denied_meanwhile(
    store_backend: StoreBackend,
) -> None:
    """Connect may carry out an unanswered role call after the bot stopped looking: the
    request waits incomplete (a retry or a close looks first), never back to pending where a
    deny would leave the record saying the opposite of Connect."""
    connect = Connect()
    await with_account(connect)
    connect.set_role_script = [TIMEOUT]
    svc = service(store_backend.store, connect)
    filed = await file_change(svc)
    assert isinstance(filed, Filed)
    request = await approved(svc, filed.request.id)
    assert request.state is RequestState.INCOMPLETE
    assert request.last_error and request.last_error.startswith("Setting the role failed")
    denied = await svc.deny(request.id, APPROVER2, "changed my mind")
    assert isinstance(denied, Refused) and denied.reason is Refusal.ALREADY_DECIDED
    # Connect carried it out late; the retry sees it and makes no second call.
    connect.accounts["julie"] = Account(guid=GUID, username="julie", user_role="publisher")
    done = await svc.retry(request.id, APPROVER2)
    assert isinstance(done, Decided) and done.request.state is RequestState.APPROVED
    assert connect.role_calls == ["publisher"]


async def test_filing_with_a_role_while_connect_cannot_say_is_not_refused_as_invalid(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    svc = service(store_backend.store, connect)

    async def down() -> DirectoryCapabilities:
        raise TIMEOUT

    connect.capabilities = down  # type: ignore[method-assign]
    assert await svc.roles_offered() == ()
    outcome = await svc.file_request(
        requester_id=REQUESTER, username="julie", justification="x", role="publisher"
    )
    assert outcome == NotFiled(FileProblem.CANNOT_VERIFY)


@pytest.mark.parametrize("script", ["hang", "apply-then-hang"])
async def test_a_crash_between_the_steps_is_finished_by_recovery_without_repeats(
    store_backend: StoreBackend, script: str
) -> None:
    """The approving process dies after the account was recorded: before its role call went
    out ("hang": Connect never got it) or after Connect carried it out."""
    store = store_backend.store
    connect = Connect()
    connect.set_role_script = [script]
    dying = service(store, connect, instance_id="dying", lease=0.3)
    request_id = await file(dying, "publisher")
    task = asyncio.create_task(dying.approve(request_id, APPROVER))
    await asyncio.wait_for(connect.hung.wait(), 5)
    task.cancel()  # the process is gone: no heartbeat, no answer
    with pytest.raises(asyncio.CancelledError):
        await task
    recorded = await store.get(request_id)
    assert recorded is not None and recorded.state is RequestState.PROVISIONING
    assert statuses(recorded)[0] == ("create_account", "done")
    await asyncio.sleep(0.4)  # the lease runs out

    recovered = await service(store, connect, instance_id="b").provisioner.recover_expired_leases()
    assert [r.state for r in recovered] == [RequestState.APPROVED]
    assert connect.creates == 1, "the account is never created twice"
    assert connect.roles_applied == ["publisher"], "the role is set once"
    assert connect.accounts["julie"].user_role == "publisher"
    assert statuses(recovered[0]) == [("create_account", "done"), ("set_role", "done")]


# -- role changes ------------------------------------------------------------------------------


async def with_account(connect: Connect, role: str = "viewer") -> None:
    connect.accounts["julie"] = Account(
        guid=GUID, username="julie", first_name="Julie", email="j@example.com", user_role=role
    )


async def file_change(svc: Requests, role: str = "publisher", **kw: Any) -> Any:
    return await svc.file_role_change(
        requester_id=kw.get("requester", REQUESTER),
        guid=kw.get("guid", GUID),
        role=role,
        justification=kw.get("justification", "publishes the team's reports"),
    )


async def test_a_role_change_is_filed_approved_and_carried_out_once(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    await with_account(connect)
    svc = service(store_backend.store, connect)
    filed = await file_change(svc)
    assert isinstance(filed, Filed)
    request = filed.request
    assert request.kind is RequestKind.ROLE_CHANGE and request.connect_guid == GUID
    assert request.role_before == "viewer" and request.role_asked == "publisher"
    assert request.username == "julie" and request.temp_ticket == ""
    assert statuses(request) == [("set_role", "pending")]
    refused = await svc.approve(request.id, REQUESTER)
    assert isinstance(refused, Refused) and refused.reason is Refusal.SELF_APPROVAL
    outcomes = await asyncio.gather(
        svc.approve(request.id, APPROVER), svc.approve(request.id, APPROVER2)
    )
    assert sum(isinstance(o, Decided) for o in outcomes) == 1
    done = await store_backend.store.get(request.id)
    assert done is not None and done.state is RequestState.APPROVED
    assert connect.role_calls == ["publisher"] and connect.creates == 0
    assert (await owed(store_backend, request.id))[-2:] == [
        OutboxKind.NOTIFY_REQUESTER,
        OutboxKind.WELCOME,
    ], "the requester and the person are told"


async def test_a_refused_role_change_goes_back_to_pending(store_backend: StoreBackend) -> None:
    connect = Connect()
    await with_account(connect)
    connect.set_role_script = [ROLE_REFUSED]
    svc = service(store_backend.store, connect)
    filed = await file_change(svc)
    assert isinstance(filed, Filed)
    request = await approved(svc, filed.request.id)
    assert request.state is RequestState.PENDING
    assert request.last_error and ROLE_REFUSED.explanation in request.last_error
    assert statuses(request) == [("set_role", "failed")]
    done = await approved(svc, request.id)
    assert done.state is RequestState.APPROVED and statuses(done) == [("set_role", "done")]


async def test_role_change_filing_problems(store_backend: StoreBackend) -> None:
    connect = Connect()
    await with_account(connect, role="publisher")
    svc = service(store_backend.store, connect)
    assert await file_change(svc, justification="  ") == NotFiled(FileProblem.EMPTY_JUSTIFICATION)
    assert await file_change(svc, "administrator") == NotFiled(FileProblem.ROLE_NOT_REQUESTABLE)
    assert await file_change(svc, "publisher") == NotFiled(FileProblem.SAME_ROLE, guid=GUID)
    assert await file_change(svc, "viewer", guid="nobody") == NotFiled(FileProblem.NO_ACCOUNT)
    first = await file_change(svc, "viewer")
    assert isinstance(first, Filed)
    assert isinstance(await file_change(svc, "viewer"), Duplicate)
    connect.key_role_value = "publisher"
    assert await file_change(svc, "viewer") == NotFiled(FileProblem.ROLES_NOT_MANAGED)


# -- the migration ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_migration_0005_gives_existing_requests_one_step(
    backend_name: str, tmp_path: Path
) -> None:
    when = datetime(2025, 3, 1, tzinfo=UTC)
    async with open_store_backend(backend_name, tmp_path, migrate=False) as old:
        async with old.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "0004"))
            for request_id, state in (
                ("made", "approved"),
                ("there", "already_exists"),
                ("waiting", "pending"),
                ("said-no", "denied"),
            ):
                await insert_old_request(
                    conn, request_id, f"user-{request_id}", state=state, created_at=when
                )
        await upgrade(old.engine)
        found = {r: await old.store.get(r) for r in ("made", "there", "waiting", "said-no")}
    steps = {r: statuses(req) for r, req in found.items() if req is not None}
    assert steps == {
        "made": [("create_account", "done")],
        "there": [("create_account", "skipped")],
        "waiting": [("create_account", "pending")],
        "said-no": [("create_account", "pending")],
    }
    assert all(
        req is not None and req.kind is RequestKind.NEW_ACCOUNT and req.role_asked is None
        for req in found.values()
    )


async def test_the_database_counts_an_incomplete_request_as_the_persons_active_one(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    svc = service(store, Connect())
    request_id = await file(svc, "publisher")
    moved = await store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.INCOMPLETE,
        now=datetime.now(UTC),
    )
    assert moved is not None
    with pytest.raises(DuplicateRequestError) as raised:
        await store.create(
            NewRequest(
                request_id="second",
                requester_id=OUTSIDER,
                person=Person("julie", "Julie Jolly", "j@example.com", "tkt-julie"),
                justification="x",
                created_at=datetime.now(UTC),
            )
        )
    assert raised.value.existing.id == request_id


# -- nobody approves their own access --------------------------------------------------------------


class People:
    """Slack's users.lookupByEmail, as the workflow sees it."""

    def __init__(self, members: dict[str, str], *, down: bool = False) -> None:
        self.members = members
        self.down = down

    async def person_id(self, email: str) -> str | None:
        if self.down:
            raise PersonLookupUnavailable("users.lookupByEmail: timeout")
        return self.members.get(email)


def service_with_people(store: SqlRequestStore, connect: Connect, people: People) -> Requests:
    svc = service(store, connect)
    svc.people = people
    return svc


async def test_the_person_a_request_is_for_may_not_decide_it(store_backend: StoreBackend) -> None:
    """APPROVER2's colleague asks Publisher for APPROVER2's own directory entry: APPROVER2 is an
    approver, but not of their own access."""
    connect = Connect()
    svc = service_with_people(store_backend.store, connect, People({"j@example.com": APPROVER2}))
    request_id = await file(svc, "publisher")
    request = await store_backend.store.get(request_id)
    assert request is not None
    assert (request.subject_id, request.subject_link) == (APPROVER2, SubjectLink.LINKED)
    for decide in (
        lambda: svc.approve(request_id, APPROVER2),
        lambda: svc.deny(request_id, APPROVER2, "no"),
    ):
        refused = await decide()
        assert isinstance(refused, Refused) and refused.reason is Refusal.SUBJECT
    assert connect.creates == 0
    connect.set_role_script = [ROLE_REFUSED]
    assert (await approved(svc, request_id)).state is RequestState.INCOMPLETE
    for act in (svc.retry, svc.close):
        refused = await act(request_id, APPROVER2)
        assert isinstance(refused, Refused) and refused.reason is Refusal.SUBJECT


async def test_a_role_change_for_an_approvers_own_account_is_not_theirs_to_approve(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    await with_account(connect)
    svc = service_with_people(store_backend.store, connect, People({"j@example.com": APPROVER}))
    filed = await file_change(svc, requester=OUTSIDER)
    assert isinstance(filed, Filed) and filed.request.subject_id == APPROVER
    refused = await svc.approve(filed.request.id, APPROVER)
    assert isinstance(refused, Refused) and refused.reason is Refusal.SUBJECT
    assert connect.role_calls == []


@pytest.mark.parametrize(
    ("people", "email", "link"),
    [
        (People({}), "j@example.com", SubjectLink.NOT_FOUND),
        (People({}, down=True), "j@example.com", SubjectLink.UNAVAILABLE),
        (People({"": APPROVER}), "", SubjectLink.NO_EMAIL),
    ],
    ids=["nobody has the email", "Slack down", "no email"],
)
async def test_a_person_who_cannot_be_matched_is_recorded_so(
    store_backend: StoreBackend, people: People, email: str, link: SubjectLink
) -> None:
    connect = Connect()
    connect.directory["julie"] = DirectoryEntry("julie", "Julie", "Jolly", email)
    svc = service_with_people(store_backend.store, connect, people)
    request = await store_backend.store.get(await file(svc, "publisher"))
    assert request is not None
    assert (request.subject_id, request.subject_link) == (None, link)
    assert isinstance(await svc.approve(request.id, APPROVER), Decided), "filing still works"
