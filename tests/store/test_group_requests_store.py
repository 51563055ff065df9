"""Group requests in the store: one active request per directory group name, and a group never
blocks (or is blocked by) a person who happens to share its name; the groups an account request
names, and its membership steps, survive a round trip."""

from __future__ import annotations

import dataclasses

import pytest

from bot.workflow.models import GroupRef, NewRequest, Person, RequestKind, StepAction
from bot.workflow.ports import DuplicateRequestError
from tests.support import store_backends
from tests.support.samples import T0, new_request
from tests.support.store_backends import StoreBackend

store_backend = store_backends.store_backend


def group_request(request_id: str, name: str) -> NewRequest:
    return NewRequest(
        request_id=request_id,
        requester_id="U123",
        person=Person(username="", full_name="", email="", temp_ticket="tkt-group-0123456789"),
        justification="dashboards",
        created_at=T0,
        kind=RequestKind.NEW_GROUP,
        group_name=name,
    )


async def test_one_active_request_per_group_and_none_shared_with_people(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    await store.create(group_request("g1", "analysts"))
    # A person whose username is the group's name, and another group: no conflict.
    await store.create(new_request("p1", "analysts"))
    await store.create(group_request("g2", "finance"))
    with pytest.raises(DuplicateRequestError) as raised:
        await store.create(group_request("g3", "analysts"))
    assert raised.value.existing.id == "g1"
    found = await store.find_active_group("analysts")
    assert found is not None and found.kind is RequestKind.NEW_GROUP
    person = await store.find_active("analysts")
    assert person is not None and person.id == "p1"
    assert await store.find_active("") is None  # group requests hold no username


async def test_groups_and_their_steps_round_trip(store_backend: StoreBackend) -> None:
    groups = (GroupRef("0b6d1a5e-1111-4222-8333-444455556666", "analysts"),)
    created = await store_backend.store.create(
        dataclasses.replace(new_request("p1", "ann"), groups=groups)
    )
    assert created.groups == groups
    [step] = created.membership_steps
    assert step.action is StepAction.ADD_TO_GROUP
    assert (step.target, step.target_name) == (groups[0].guid, "analysts")
