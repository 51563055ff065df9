"""Timers: requests nobody decided expire, and approvers are reminded of the ones that wait.

Timers are rows, not sleeps: each pass finds what is due from the database, and each expiry or
reminder is claimed with one conditional UPDATE, so a restart loses nothing and two replicas
running the same pass act once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.workflow.clock import Clock, utcnow
from bot.workflow.models import OutboxItem, OutboxKind
from bot.workflow.outcomes import TimerReport
from bot.workflow.ports import NO_METRICS, Metrics, RequestStore
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)


class Timers:
    def __init__(
        self,
        *,
        store: RequestStore,
        request_expiry_hours: float = 7 * 24.0,
        reminder_after_hours: float = 24.0,
        escalate_after_hours: float | None = None,
        batch: int = 200,
        clock: Clock = utcnow,
        on_outbox: Callable[[], None] | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.request_expiry = timedelta(hours=request_expiry_hours)
        self.reminder_after = timedelta(hours=reminder_after_hours)
        self.escalate_after = (
            None if escalate_after_hours is None else timedelta(hours=escalate_after_hours)
        )
        self.batch = batch
        self.clock = clock
        self._on_outbox = on_outbox or (lambda: None)

    async def run(self, now: datetime | None = None) -> TimerReport:
        """Expire requests nobody decided in time, then remind approvers of the ones waiting.

        Each pass handles at most `batch` of each; the rest wait for the next pass."""
        now = now or self.clock()
        expired = await self._expire_due(now)
        reminded = await self._remind_due(now)
        escalated = await self._escalate_due(now)
        if expired or reminded or escalated:
            self._on_outbox()
        return TimerReport(
            expired=tuple(expired), reminded=tuple(reminded), escalated=tuple(escalated)
        )

    async def _escalate_due(self, now: datetime) -> list[str]:
        """Announce, once, each request still undecided after ESCALATE_AFTER_HOURS: the claim is
        one conditional update (escalated_at still empty), so replicas and restarts announce
        it once."""
        if self.escalate_after is None:
            return []
        pending = {RequestState.PENDING}
        due = await self.store.list_requests(
            states=pending,
            created_before=now - self.escalate_after,
            not_escalated=True,
            limit=self.batch,
        )
        escalated = []
        for request in due:
            claimed = await self.store.transition(
                request.id,
                from_states=pending,
                to_state=RequestState.PENDING,
                now=now,
                changes={"escalated_at": now},
                outbox=[OutboxItem(OutboxKind.ESCALATE)],
                expect={"escalated_at": None},
            )
            if claimed is not None:
                log.info("request %s: escalated", request.id)
                escalated.append(request.id)
        return escalated

    async def _expire_due(self, now: datetime) -> list[str]:
        pending = {RequestState.PENDING}
        due = await self.store.list_requests(
            states=pending, created_before=now - self.request_expiry, limit=self.batch
        )
        expired = []
        for request in due:
            done = await self.store.transition(
                request.id,
                from_states=pending,
                to_state=RequestState.EXPIRED,
                now=now,
                # The ticket is a credential no one will use now.
                changes={"temp_ticket": ""},
                outbox=[
                    OutboxItem(OutboxKind.UPDATE_CARD),
                    OutboxItem(OutboxKind.NOTIFY_REQUESTER),
                ],
            )
            if done is not None:  # None: decided or expired elsewhere meanwhile
                log.info("request %s expired undecided", request.id)
                waited = (now - done.created_at).total_seconds() if done.created_at else None
                self.metrics.request_decided(done.kind.value, "expired", waited)
                expired.append(request.id)
        return expired

    async def _remind_due(self, now: datetime) -> list[str]:
        due_before = now - self.reminder_after
        reminded = []
        for request in await self.store.list_reminders_due(due_before=due_before, limit=self.batch):
            claimed = await self.store.claim_reminder(
                request.id,
                now=now,
                due_before=due_before,
                outbox=[OutboxItem(OutboxKind.REMIND_APPROVERS)],
            )
            if claimed is not None:
                log.info("request %s: reminding the approvers", request.id)
                reminded.append(request.id)
        return reminded
