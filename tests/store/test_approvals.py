"""Approvals as rows, on SQLite and PostgreSQL: an approver counts once per role, the count is
per role, and of approvals racing from two replicas exactly one is the last one needed (the
one that carries the request out)."""

from __future__ import annotations

import asyncio

from starlette.datastructures import QueryParams

from bot.store.audit_queries import AuditFilter, iter_requests, list_requests
from bot.web.audit_page import CSV_COLUMNS, csv_row, parse_query, record_json, render_page
from bot.workflow.approvals import ApprovalsRequired
from bot.workflow.outcomes import ApprovalCounted, Decided, Refusal, Refused
from bot.workflow.provisioning import Provisioner
from bot.workflow.requests import Requests
from bot.workflow.states import RequestState
from tests.store.test_steps import DELAYS, REQUESTER, Connect, file
from tests.support import store_backends
from tests.support.fake_ports import Approvers
from tests.support.store_backends import StoreBackend

store_backend = store_backends.store_backend

APPROVERS = ("UAPPROVER", "UAPPROVER2", "UAPPROVER3")


def two_person(store: object, connect: Connect, *, instance_id: str = "a") -> Requests:
    provisioner = Provisioner(
        store=store,  # type: ignore[arg-type]
        directory=connect,  # type: ignore[arg-type]
        instance_id=instance_id,
        lease_seconds=30,
        settle_delays=DELAYS,
    )
    return Requests(
        store=store,  # type: ignore[arg-type]
        directory=connect,  # type: ignore[arg-type]
        approvers=Approvers(*APPROVERS),
        provisioner=provisioner,
        requestable_roles=("viewer", "publisher", "administrator"),
        approvals_required=ApprovalsRequired({"publisher": 2, "administrator": 3}),
    )


async def test_an_approver_counts_once_and_the_last_approval_carries_it_out(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    svc = two_person(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    first = await svc.approve(request_id, APPROVERS[0], note="  looks right  ")
    assert isinstance(first, ApprovalCounted) and first.needed == 2
    assert [(a.approver_id, a.role, a.note) for a in first.request.approvals] == [
        (APPROVERS[0], "publisher", "looks right")
    ]
    again = await svc.approve(request_id, APPROVERS[0])
    assert isinstance(again, Refused) and again.reason is Refusal.ALREADY_APPROVED
    assert connect.creates == 0
    last = await svc.approve(request_id, APPROVERS[1])
    assert isinstance(last, Decided) and last.request.state is RequestState.APPROVED
    assert connect.creates == 1 and connect.roles_applied == ["publisher"]
    assert last.request.decided_by == APPROVERS[1]
    stored = await store_backend.store.get(request_id)
    assert stored is not None
    assert [a.approver_id for a in stored.approvals] == list(APPROVERS[:2])
    # Listing reads them too (the Home tab, the lists).
    listed = await store_backend.store.list_requests(requester_id=REQUESTER)
    assert [len(r.approvals) for r in listed] == [2]


async def test_approvals_count_for_the_role_they_were_given_for(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    svc = two_person(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    assert isinstance(await svc.approve(request_id, APPROVERS[0]), ApprovalCounted)
    # A raise to Administrator: a new question, counted from zero (three needed).
    raised = await svc.approve(request_id, APPROVERS[1], "administrator")
    assert not isinstance(raised, Refused | Decided)
    for approver in APPROVERS[:2]:
        counted = await svc.approve(request_id, approver)
        assert isinstance(counted, ApprovalCounted), counted
    assert connect.creates == 0
    done = await svc.approve(request_id, APPROVERS[2])
    assert isinstance(done, Decided) and done.request.role_granted == "administrator"
    assert connect.creates == 1


async def test_concurrent_approvals_on_two_replicas_reach_the_count_once(
    store_backend: StoreBackend,
) -> None:
    connect = Connect()
    replicas = [
        two_person(store_backend.store, connect, instance_id="a"),
        two_person(store_backend.new_store(), connect, instance_id="b"),
    ]
    for round_ in range(3):
        request_id = await file(replicas[0], "publisher", username="julie")
        outcomes = await asyncio.gather(
            *(replicas[n % 2].approve(request_id, APPROVERS[n % 3]) for n in range(12))
        )
        decided = [o for o in outcomes if isinstance(o, Decided)]
        assert len(decided) == 1, outcomes
        stored = await store_backend.store.get(request_id)
        assert stored is not None and stored.state is RequestState.APPROVED
        assert len(stored.approvals) == 2, "the third approver came too late to count"
        assert connect.creates == round_ + 1
        connect.accounts.clear()  # the next round asks for the same person again


async def test_the_audit_record_lists_every_approval(store_backend: StoreBackend) -> None:
    connect = Connect()
    svc = two_person(store_backend.store, connect)
    request_id = await file(svc, "publisher")
    await svc.approve(request_id, APPROVERS[0], note="ok by me")
    await svc.approve(request_id, APPROVERS[1])
    page = await list_requests(store_backend.engine, AuditFilter(), page=1, per_page=10)
    [record] = page.records
    assert [(a.approver_id, a.role, a.note) for a in record.approvals] == [
        (APPROVERS[0], "publisher", "ok by me"),
        (APPROVERS[1], "publisher", None),
    ]
    as_json = record_json(record)["approvals"]
    assert [a["approver"] for a in as_json] == list(APPROVERS[:2])
    assert as_json[0]["note"] == "ok by me" and as_json[0]["round"] == 0
    row = dict(zip(CSV_COLUMNS, csv_row(record), strict=True))
    assert row["approvals"] == f"{APPROVERS[0]}:publisher; {APPROVERS[1]}:publisher"
    exported = [r async for r in iter_requests(store_backend.engine, AuditFilter())]
    assert exported[0].approvals == record.approvals
    html = render_page(page, parse_query(QueryParams(""), "text/html"), visitor="auditor")
    assert f"<code>{APPROVERS[0]}</code> · Publisher" in html and "ok by me" in html
