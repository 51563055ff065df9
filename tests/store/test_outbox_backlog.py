"""The outbox's backlog as a metrics scrape reads it: how many messages wait, and the oldest."""

from __future__ import annotations

from datetime import UTC, timedelta

from bot.workflow.models import OutboxItem, OutboxKind
from tests.support import store_backends
from tests.support.samples import T0, new_request
from tests.support.store_backends import StoreBackend

# Parametrised over sqlite and postgres (assigned, not imported: see tests/store/test_store.py).
store_backend = store_backends.store_backend


async def test_backlog_counts_what_waits_and_dates_the_oldest(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.store
    assert await store.outbox_backlog() == (0, None)

    card = OutboxItem(OutboxKind.POST_CARD)
    await store.create(new_request("reqA", "alice", created_at=T0), outbox=[card])
    later = T0 + timedelta(minutes=5)
    await store.create(new_request("reqB", "bob", created_at=later), outbox=[card, card])
    count, oldest = await store.outbox_backlog()
    assert count == 3
    assert oldest == T0 and oldest.tzinfo is not None
    assert oldest.astimezone(UTC) == T0

    # Delivered and given-up messages wait no more.
    claimed = await store.claim_outbox(owner="w1", now=later, lease_seconds=30)
    first = next(message for message in claimed if message.request_id == "reqA")
    second = next(message for message in claimed if message.request_id == "reqB")
    await store.outbox_delivered(first.id, now=later)
    await store.outbox_give_up(second.id, now=later, error="channel_not_found")
    assert await store.outbox_backlog() == (1, later)
