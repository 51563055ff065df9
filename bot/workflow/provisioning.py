"""Carrying out an approval, and settling the ones whose outcome is unclear.

Only the holder of a request's lease acts on it: the approver's process right after the click, or,
when that process died or could not tell what Connect did, whichever replica's recovery takes the
expired lease over. The holder renews its lease while it works (by the database's clock, which
every replica shares), records when it sent the PUT, and never sends one without a live lease. A
PUT whose answer never came is settled by looking for the account before anything is retried;
an account found is this approval's if Connect created it after the PUT went out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from bot.workflow.clock import Clock, utcnow
from bot.workflow.models import (
    LOCK_KINDS,
    Account,
    GroupRef,
    OutboxItem,
    OutboxKind,
    ProvisioningRequest,
    RequestKind,
    Step,
    StepAction,
    StepStatus,
)
from bot.workflow.ports import (
    NO_METRICS,
    Directory,
    DirectoryError,
    DirectoryProblem,
    DirectoryRefused,
    GroupDirectory,
    Metrics,
    RequestStore,
)
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)

# Appended to the card's error while an approval's outcome cannot be checked; removed again when
# the lease recovery looks once more.
UNSETTLED_NOTE = "The bot could not check the outcome yet and will look again shortly."
# Appended to the card's error while the bot looks for the account a PUT may have created.
CHECKING_NOTE = (
    "The bot is checking whether Connect created the account; Approve comes back if it did not."
)
# Appended to the card's error while the bot looks at the account after an unanswered role call.
ROLE_CHECKING_NOTE = "The bot is checking whether Connect changed the role."
# The same after an unanswered lock or unlock call.
LOCK_CHECKING_NOTE = "The bot is checking whether Connect locked or unlocked the account."
# Appended to the card's error while the bot looks for the group a PUT /v1/groups may have made.
GROUP_CHECKING_NOTE = (
    "The bot is checking whether Connect brought the group in; Approve comes back if it did not."
)
# Connect's clock is not the database's (the PUT's times are the database's). An account whose
# created_time is at most this much earlier than the first PUT whose answer never came still
# counts as created by it. Servers kept by NTP agree within a second; two minutes also covers a
# VM or container that drifts, while an account somebody else made in those minutes (after the
# request was filed, when the person had none) is rare, and then merely reported as this
# request's. It only ever applies after an unknown outcome: a PUT Connect refused on the spot
# created nothing.
CLOCK_SKEW_MARGIN = timedelta(minutes=2)
# How many recovered approvals are settled side by side (each may look for a while).
RECOVERY_CONCURRENCY = 8


def settle_schedule(connect_timeout: float) -> tuple[float, ...]:
    """When to look for the account after a PUT's outcome became unknown, in seconds after that
    moment: spread over about two CONNECT_TIMEOUTs, since Connect may still be carrying out a
    PUT the bot stopped waiting for."""
    return tuple(connect_timeout * share for share in (0.5, 1.0, 1.5, 2.0))


def not_created(problem: str) -> str:
    return f"{problem}, and no account was created. Press Approve to try again."


def _role_step_due(request: ProvisioningRequest) -> bool:
    step = request.step(StepAction.SET_ROLE)
    return step is not None and step.status is not StepStatus.DONE and bool(request.role_granted)


def _account_settled(request: ProvisioningRequest) -> bool:
    """Whether the request's account exists (created by its first step, or changed by it)."""
    if (
        request.kind in (RequestKind.ROLE_CHANGE, RequestKind.JOIN_GROUPS)
        or request.kind in LOCK_KINDS
    ):
        return True
    create = request.step(StepAction.CREATE_ACCOUNT)
    return create is not None and create.status is StepStatus.DONE and bool(request.connect_guid)


def _settled_steps(
    request: ProvisioningRequest, *, created: bool, now: datetime
) -> tuple[Step, ...]:
    """The steps once the account step is settled: done when this request created the account;
    skipped, with the role step, when the account was there already."""
    if created:
        return request.with_step(
            StepAction.CREATE_ACCOUNT, status=StepStatus.DONE, error=None, done_at=now
        )
    steps = request.with_step(
        StepAction.CREATE_ACCOUNT, status=StepStatus.SKIPPED, note="The account existed already."
    )
    skipped = dataclasses.replace(request, steps=steps).with_step(
        StepAction.SET_ROLE, status=StepStatus.SKIPPED, note="Not set: the account existed already."
    )
    return dataclasses.replace(request, steps=skipped).with_step(
        StepAction.ADD_TO_GROUP,
        status=StepStatus.SKIPPED,
        note="Not added: the account existed already (ask to Join groups).",
    )


def _membership_due(request: ProvisioningRequest) -> bool:
    """Whether the account still has groups to be added to (it must exist by now)."""
    return bool(request.connect_guid) and any(
        step.status in (StepStatus.PENDING, StepStatus.FAILED) for step in request.membership_steps
    )


def _problem_of(note: str | None) -> str | None:
    """The problem a checking or unsettled note starts with (see DirectoryError.problem)."""
    for suffix in (
        CHECKING_NOTE,
        ROLE_CHECKING_NOTE,
        LOCK_CHECKING_NOTE,
        GROUP_CHECKING_NOTE,
        UNSETTLED_NOTE,
    ):
        if note and note.endswith(f". {suffix}"):
            return note.removesuffix(f". {suffix}")
    return None


class Provisioner:
    def __init__(
        self,
        *,
        store: RequestStore,
        directory: Directory,
        instance_id: str,
        groups: GroupDirectory | None = None,
        lease_seconds: float = 120.0,
        settle_delays: Sequence[float] = settle_schedule(10.0),
        clock: Clock = utcnow,
        on_outbox: Callable[[], None] | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.store = store
        self.directory = directory
        self.groups = groups
        self.instance_id = instance_id
        self.metrics = metrics
        self.lease = timedelta(seconds=lease_seconds)
        self.settle_delays = tuple(settle_delays)
        # How long after a PUT went out Connect may still carry it out: the request's own
        # timeout and the look-ups after it (settle_schedule spreads them over two timeouts).
        self.put_patience = timedelta(seconds=1.5 * max(self.settle_delays, default=0.0))
        self.clock = clock
        self._on_outbox = on_outbox or (lambda: None)
        # Requests this process is working on (under a lease it renews): its own lease recovery
        # leaves them alone even if a renewal failed and the lease ran out.
        self._in_flight: set[str] = set()

    async def carry_out(self, claimed: ProvisioningRequest) -> ProvisioningRequest:
        """Create the account of a request this process has just claimed (its lease is ours);
        returns the request as it ended up (approved, already there, pending again, …)."""
        async with self._holding(claimed.id):
            if claimed.kind is RequestKind.NEW_GROUP:
                return await self._bring_in_group(claimed)
            if claimed.kind is RequestKind.JOIN_GROUPS:
                return await self._add_to_groups(claimed)
            if claimed.kind is RequestKind.ROLE_CHANGE:
                return await self._set_role(claimed, known_role=None, look_first=False)
            if claimed.kind in LOCK_KINDS:
                return await self._set_locked(claimed, look_first=False)
            return await self._provision(claimed)

    async def carry_on(self, claimed: ProvisioningRequest) -> ProvisioningRequest:
        """Carry out the steps a request claimed for a retry has left (its lease is ours). The
        account is looked at before a role is set again: a step that failed or went unanswered
        may have happened after all."""
        async with self._holding(claimed.id):
            return await self._remaining_steps(claimed)

    async def _remaining_steps(self, request: ProvisioningRequest) -> ProvisioningRequest:
        if request.kind in LOCK_KINDS:
            # Whatever happened before (a crash, a failure, no answer), Connect is asked first.
            return await self._set_locked(request, look_first=True)
        role_step = request.step(StepAction.SET_ROLE)
        if role_step is not None and role_step.status is not StepStatus.DONE:
            return await self._set_role(request, known_role=None, look_first=True)
        if _membership_due(request):
            return await self._add_to_groups(request)
        return await self._complete(request)

    @contextlib.asynccontextmanager
    async def _holding(self, request_id: str) -> AsyncIterator[None]:
        """While this process works on a request: renew its lease (so it never runs out under
        a live holder, however slow Connect is), and keep this process's recovery off it."""
        self._in_flight.add(request_id)
        heartbeat = asyncio.create_task(self._renew_lease(request_id), name="lease-heartbeat")
        try:
            yield
        finally:
            heartbeat.cancel()
            self._in_flight.discard(request_id)

    async def _renew_lease(self, request_id: str) -> None:
        while True:
            seconds = self.lease.total_seconds()
            await asyncio.sleep(seconds / 3)
            try:
                held = await self.store.renew_lease(
                    request_id, owner=self.instance_id, lease_seconds=seconds
                )
            except Exception as exc:  # the database may be back by the next beat
                log.warning(
                    "request %s: renewing the lease failed: %s", request_id, type(exc).__name__
                )
                continue
            if not held:  # finished, let run out on purpose, or (after a stall) taken over
                return

    async def _provision(self, request: ProvisioningRequest) -> ProvisioningRequest:
        ticket = request.temp_ticket
        for attempt in (1, 2):
            # Checked and recorded right before sending: only a live lease's holder sends a PUT,
            # and whoever settles its outcome later knows when it went out.
            sent = await self.store.mark_put_sent(
                request.id,
                owner=self.instance_id,
                lease_seconds=self.lease.total_seconds(),
                now=self.clock(),
            )
            if sent is None:
                log.warning("request %s: the lease ran out before the PUT; not sent", request.id)
                return await self._reload(request)
            request = sent
            try:
                user = await self.directory.create_account(ticket)
            except DirectoryRefused as exc:
                # Connect answered this PUT: it is no unanswered PUT, whatever happens next (a
                # look-up that fails, a crash) — only an earlier unanswered one can be credited.
                answered = await self._put_answered(request)
                if answered is None:
                    return await self._reload(request)
                request = answered
                if exc.kind is DirectoryProblem.USERNAME_TAKEN:
                    return await self._settle_existing(request)
                if exc.kind is DirectoryProblem.STALE_TICKET and attempt == 1:
                    fresh_ticket = await self._fresh_ticket(request)
                    if isinstance(fresh_ticket, ProvisioningRequest):
                        return fresh_ticket  # settled while looking (no longer in the directory…)
                    ticket = fresh_ticket
                    continue
                log.warning("request %s: Connect refused the PUT: %s", request.id, exc.problem)
                return await self._back_to_pending(request, exc.explanation)
            except DirectoryError as exc:
                log.warning("request %s: outcome of the PUT unknown: %s", request.id, exc.problem)
                return await self._settle_unknown(request, exc.problem, delays=self.settle_delays)
            if user.username != request.username:
                log.error(
                    "request %s: Connect created %r for a ticket filed as %r",
                    request.id,
                    user.username,
                    request.username,
                )
            return await self._finish(request, RequestState.APPROVED, user)
        raise AssertionError("unreachable: the loop returns on its second attempt")

    async def _put_answered(self, request: ProvisioningRequest) -> ProvisioningRequest | None:
        return await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.PROVISIONING,
            now=self.clock(),
            changes={"put_sent_at": None},
            lease_owner=self.instance_id,
        )

    async def _fresh_ticket(self, request: ProvisioningRequest) -> str | ProvisioningRequest:
        """Code 127: search again by username and take the exact match's ticket."""
        try:
            fresh = await self.directory.find_entry(request.username)
        except DirectoryError as exc:
            return await self._back_to_pending(request, not_created(exc.problem))
        if fresh is None:
            return await self._back_to_pending(
                request, f"{request.username} is no longer in the directory."
            )
        if fresh.has_account and fresh.guid:
            # An account appeared since filing: this request's only if an earlier PUT of it
            # went unanswered (Connect just refused this one), and when it was created says.
            try:
                found = await self.directory.find_account(request.username)
            except DirectoryError as exc:
                return await self._keep_unsettled(request, exc.problem)
            found = found or Account(guid=fresh.guid, username=fresh.username)
            return await self._settle_found(request, found, found_by_looking=False)
        # Keep the fresh ticket so a retry after a restart does not start from the stale one.
        updated = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.PROVISIONING,
            now=self.clock(),
            changes={"temp_ticket": fresh.temp_ticket},
            lease_owner=self.instance_id,
        )
        return fresh.temp_ticket if updated is not None else await self._reload(request)

    async def _settle_existing(self, request: ProvisioningRequest) -> ProvisioningRequest:
        """Code 8: the username is taken, perhaps by this very approval (a PUT of it that Connect
        carried out after the bot stopped waiting): look at when the account was created."""
        try:
            user = await self.directory.find_account(request.username)
        except DirectoryError as exc:
            return await self._keep_unsettled(request, exc.problem)
        if user is None:
            # Case-sensitive usernames: Connect says taken, but no exact match is visible.
            return await self._back_to_pending(
                request,
                f"Connect says the username {request.username} is already in use, but the bot "
                "cannot find that account. An administrator should look in Connect.",
            )
        return await self._settle_found(request, user, found_by_looking=False)

    async def _settle_found(
        self, request: ProvisioningRequest, user: Account, *, found_by_looking: bool
    ) -> ProvisioningRequest:
        """The account exists: created by this request, or there before it asked?

        Only a PUT whose answer never came can have created it unseen: a PUT Connect answered
        (created, refused, "username in use") says what it did. So the account is this
        request's when such a PUT is on record (unknown_put_at, kept across approvals and
        replicas) and Connect created the account after it, give or take CLOCK_SKEW_MARGIN for
        the two clocks; when Connect does not say when, the unanswered PUT is taken to have
        done it.
        """
        created, since = user.created_time, request.unknown_put_at
        # Made within the time that PUT could still have been carried out (its own timeout and
        # the look-ups after it), give or take the clocks: a later account (the person's own
        # first login days after, say) is not that PUT's doing.
        window = self.put_patience + CLOCK_SKEW_MARGIN
        ours = since is not None and (
            created is None or since - CLOCK_SKEW_MARGIN <= created <= since + window
        )
        if ours:
            note = (
                "Created during this approval: Connect did not confirm the request in time, "
                "and the bot found the account afterwards."
                if found_by_looking
                else "Created during this approval: Connect answered that the username was in "
                "use, but the account appeared only after the bot had asked Connect to create "
                "it (an earlier, unanswered request went through)."
            )
            return await self._finish(request, RequestState.APPROVED, user, note=note)
        earlier = None
        if since is not None and created is not None and created > since + window:
            earlier = (
                f"The account was created on {created:%Y-%m-%d at %H:%M} UTC, long after an "
                "earlier request of this approval went unanswered: not by this request."
            )
        elif found_by_looking and created is not None:
            earlier = (
                f"The account was created on {created:%Y-%m-%d at %H:%M} UTC, before this "
                "approval asked Connect for it."
            )
        return await self._finish(request, RequestState.ALREADY_EXISTS, user, note=earlier)

    async def _settle_unknown(
        self,
        request: ProvisioningRequest,
        problem: str,
        *,
        delays: Sequence[float],
        announce: bool = True,
    ) -> ProvisioningRequest:
        """The PUT may or may not have happened, and Connect may still be carrying it out: look
        for the account at `delays` (seconds from now) before anything can be retried.

        Meanwhile the request stays provisioning under the lease (no Approve on the card, which
        says the outcome is being checked). The last look-up decides: an account settles it (see
        `_settle_found`), no account sends it back to pending, and no answer at all leaves it
        unsettled for the lease recovery.
        """
        # From now on the PUT may have created the account, whatever this approval ends in.
        since = request.unknown_put_at or request.put_sent_at
        if announce or (since is not None and since != request.unknown_put_at):
            note = f"{problem}. {CHECKING_NOTE}" if announce else request.last_error
            checking = await self._note_on_card(request, note, unknown_put_at=since)
            if checking is None:
                return await self._reload(request)
            request = checking
        loop = asyncio.get_running_loop()
        started = loop.time()
        unanswered: DirectoryError | None = None
        for delay in delays or (0.0,):
            await asyncio.sleep(max(0.0, started + delay - loop.time()))
            try:
                user = await self.directory.find_account(request.username)
            except DirectoryRefused as exc:
                # Connect refuses to say (the bot's key, say): nobody learns more by waiting.
                log.error("request %s: Connect refused the look-up: %s", request.id, exc.problem)
                return await self._keep_unsettled(request, problem, because=exc.explanation)
            except DirectoryError as exc:
                unanswered = exc
                continue
            unanswered = None
            if user is not None:
                return await self._settle_found(request, user, found_by_looking=True)
        if unanswered is not None:
            return await self._keep_unsettled(request, problem)
        return await self._back_to_pending(request, not_created(problem))

    async def _note_on_card(
        self,
        request: ProvisioningRequest,
        note: str | None,
        *,
        release: bool = False,
        unknown_put_at: datetime | None = None,
    ) -> ProvisioningRequest | None:
        """Say on the card (through last_error) where a provisioning request stands.

        `release` ends the lease now (no owner, expired) so the recovery loop takes it from
        here, and no heartbeat still in flight can extend it. The card is updated only when the
        note changed: a request the recovery loop keeps finding unsettled owes no update per
        pass (chat.update is rate limited)."""
        changes: dict[str, object] = {"last_error": note}
        if release:
            changes["lease_owner"] = None
        if unknown_put_at is not None:
            changes["unknown_put_at"] = unknown_put_at
        changed = note != request.last_error
        noted = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.PROVISIONING,
            now=self.clock(),
            changes=changes,
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)] if changed else [],
            lease_owner=self.instance_id,
            lease_seconds=0.0 if release else None,
        )
        if noted is not None and changed:
            self._on_outbox()
        return noted

    async def _finish(
        self,
        request: ProvisioningRequest,
        state: RequestState,
        user: Account,
        *,
        note: str | None = None,
    ) -> ProvisioningRequest:
        """The account step is settled: created by this request (APPROVED) or there before it
        (ALREADY_EXISTS). A created account then gets the role granted, as a step of its own;
        an account that was there already keeps its role (a role change is another request)."""
        created = state is RequestState.APPROVED
        changes: dict[str, object] = {
            "connect_guid": user.guid,
            "temp_ticket": "",  # a credential with no further use: do not keep it
            "last_error": None,
            "outcome_note": note,
            "role_before": user.user_role,
            "steps": _settled_steps(request, created=created, now=self.clock()),
        }
        if not created:
            # Nothing was granted: the account keeps the role it had (role_before says it).
            changes["role_granted"] = None
        if created and _role_step_due(request):
            # Recorded before the role is set: a crash from here on never creates it twice.
            recorded = await self.store.transition(
                request.id,
                from_states={RequestState.PROVISIONING},
                to_state=RequestState.PROVISIONING,
                now=self.clock(),
                changes={**changes, "put_sent_at": None},
                lease_owner=self.instance_id,
            )
            if recorded is None:
                return await self._reload(request)
            log.info(
                "request %s: account created (guid %s); setting its role", request.id, user.guid
            )
            return await self._set_role(recorded, known_role=user.user_role, look_first=False)
        if created and any(step.status is StepStatus.PENDING for step in request.membership_steps):
            # Recorded before the first group: a crash from here on never creates it twice.
            recorded = await self.store.transition(
                request.id,
                from_states={RequestState.PROVISIONING},
                to_state=RequestState.PROVISIONING,
                now=self.clock(),
                changes={**changes, "put_sent_at": None},
                lease_owner=self.instance_id,
            )
            if recorded is None:
                return await self._reload(request)
            return await self._add_to_groups(recorded)
        return await self._end(request, state, changes)

    async def _end(
        self, request: ProvisioningRequest, state: RequestState, changes: dict[str, object]
    ) -> ProvisioningRequest:
        outbox = [OutboxItem(OutboxKind.UPDATE_CARD), OutboxItem(OutboxKind.NOTIFY_REQUESTER)]
        if (
            state is RequestState.APPROVED
            and request.email
            and request.kind not in LOCK_KINDS
            and request.kind is not RequestKind.JOIN_GROUPS  # nothing new to welcome them to
        ):
            # A new account's welcome, or a role change's news, for the person it is for.
            outbox.append(OutboxItem(OutboxKind.WELCOME))
        finished = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=state,
            now=self.clock(),
            changes={**changes, "lease_owner": None, "lease_expires_at": None},
            outbox=outbox,
            lease_owner=self.instance_id,
        )
        if finished is None:
            return await self._reload(request)
        log.info("request %s ended %s (guid %s)", request.id, state, finished.connect_guid)
        self.metrics.request_finished(finished.kind.value, state.value)
        self._on_outbox()
        return finished

    # -- the role step -------------------------------------------------------------------------

    async def _set_role(
        self, request: ProvisioningRequest, *, known_role: str | None, look_first: bool
    ) -> ProvisioningRequest:
        """Give the account the role granted, at most once: after a crash, a failure or an
        unanswered call (`look_first`) the account is looked at first, and a role it has already
        is not set again. `known_role` is the account's role when this process just saw it."""
        role, guid = request.role_granted, request.connect_guid
        if role is None or guid is None:  # nothing to set (no role was chosen)
            return await self._complete(request)
        if look_first:
            try:
                found = await self.directory.get_account(guid)
            except DirectoryRefused as exc:
                return await self._role_failed(request, exc.explanation)
            except DirectoryError as exc:
                return await self._keep_unsettled(request, exc.problem)
            if found is None:
                return await self._role_failed(
                    request, f"The account {request.username} is no longer in Connect."
                )
            known_role = found.user_role
        if known_role == role:
            return await self._complete(request, note=f"The account had the role {role} already.")
        return await self._change_account(
            request,
            lambda: self.directory.set_role(guid, role),
            what="the role change",
            refused=self._role_failed,
            unknown=self._settle_role,
            done=self._complete,
        )

    # -- the lock step -------------------------------------------------------------------------

    async def _set_locked(
        self, request: ProvisioningRequest, *, look_first: bool
    ) -> ProvisioningRequest:
        """Lock (or unlock) the account, at most once: after a crash, a failure or an unanswered
        call (`look_first`) the account's `locked` is read first, and an account already as
        asked is not locked again."""
        want = request.kind is RequestKind.LOCK
        guid = request.connect_guid
        if guid is None:
            return await self._lock_failed(request, "The request names no Connect account.")
        if look_first:
            try:
                found = await self.directory.get_account(guid)
            except DirectoryRefused as exc:
                return await self._lock_failed(request, exc.explanation)
            except DirectoryError as exc:
                return await self._keep_unsettled(request, exc.problem)
            if found is None:
                return await self._lock_failed(
                    request, f"The account {request.username} is no longer in Connect."
                )
            if found.locked is want:
                state = "locked" if want else "unlocked"
                return await self._lock_done(request, note=f"The account was {state} already.")
        return await self._change_account(
            request,
            lambda: self.directory.set_locked(guid, want),
            what="the lock call",
            refused=self._lock_failed,
            unknown=self._settle_lock,
            done=self._lock_done,
        )

    async def _change_account(
        self,
        request: ProvisioningRequest,
        send: Callable[[], Awaitable[object]],
        *,
        what: str,
        refused: Callable[[ProvisioningRequest, str], Awaitable[ProvisioningRequest]],
        unknown: Callable[[ProvisioningRequest, str], Awaitable[ProvisioningRequest]],
        done: Callable[[ProvisioningRequest], Awaitable[ProvisioningRequest]],
    ) -> ProvisioningRequest:
        """Send one change to an existing account (a role, a lock), only while this process
        holds a live lease (one whose lease ran out may be replaced by now); a refusal, an
        unknown outcome and success each go where the step says."""
        held = await self.store.renew_lease(
            request.id, owner=self.instance_id, lease_seconds=self.lease.total_seconds()
        )
        if not held:
            log.warning("request %s: the lease ran out before %s was sent", request.id, what)
            return await self._reload(request)
        try:
            await send()
        except DirectoryRefused as exc:
            log.warning("request %s: Connect refused %s: %s", request.id, what, exc.problem)
            return await refused(request, exc.explanation)
        except DirectoryError as exc:
            log.warning("request %s: outcome of %s unknown: %s", request.id, what, exc.problem)
            return await unknown(request, exc.problem)
        return await done(request)

    async def _settle_lock(self, request: ProvisioningRequest, problem: str) -> ProvisioningRequest:
        """The lock call went unanswered: look at the account over the settle delays (Connect
        may still carry the call out) before anything is retried."""
        checking = await self._note_on_card(request, f"{problem}. {LOCK_CHECKING_NOTE}")
        if checking is None:
            return await self._reload(request)
        request = checking
        want = request.kind is RequestKind.LOCK
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen: Account | None = None
        unanswered: DirectoryError | None = None
        for delay in self.settle_delays or (0.0,):
            await asyncio.sleep(max(0.0, started + delay - loop.time()))
            try:
                seen = await self.directory.get_account(request.connect_guid or "")
            except DirectoryError as exc:
                unanswered = exc
                continue
            unanswered = None
            if seen is not None and seen.locked is want:
                return await self._lock_done(request)
        if unanswered is not None or seen is None:
            return await self._keep_unsettled(request, problem)
        return await self._lock_failed(
            request,
            f"{problem}, and the account was still {'unlocked' if want else 'locked'} when the "
            "bot last looked. Connect may still carry the change out: a retry looks first.",
            surely_not_done=False,
        )

    async def _lock_failed(
        self, request: ProvisioningRequest, why: str, *, surely_not_done: bool = True
    ) -> ProvisioningRequest:
        """Not locked (or unlocked). Refused by Connect: pending again (Approve is the retry;
        a full licence says so in words). Unanswered: incomplete, so that nobody re-decides it
        while it could still land (a retry or a close looks at the account first)."""
        step = request.lock_step
        steps = (
            request.with_step(step.action, status=StepStatus.FAILED, error=why)
            if step is not None
            else request.steps
        )
        what = "locked" if request.kind is RequestKind.LOCK else "unlocked"
        if surely_not_done:
            return await self._back_to_pending(
                request, f"The account was not {what}: {why}", steps=steps
            )
        failed = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.INCOMPLETE,
            now=self.clock(),
            changes={
                "steps": steps,
                "last_error": f"The account may not have been {what}: {why}",
                "lease_owner": None,
                "lease_expires_at": None,
            },
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
            lease_owner=self.instance_id,
        )
        if failed is None:
            return await self._reload(request)
        self._on_outbox()
        return failed

    async def _lock_done(
        self, request: ProvisioningRequest, *, note: str | None = None
    ) -> ProvisioningRequest:
        step = request.lock_step
        steps = request.steps
        if step is not None:
            steps = request.with_step(
                step.action, status=StepStatus.DONE, error=None, note=note, done_at=self.clock()
            )
        changes: dict[str, object] = {"steps": steps, "last_error": None, "put_sent_at": None}
        if note:
            changes["outcome_note"] = note
        return await self._end(request, RequestState.APPROVED, changes)

    async def _settle_role(self, request: ProvisioningRequest, problem: str) -> ProvisioningRequest:
        """The role call went unanswered: look at the account over the settle delays (Connect
        may still carry the call out) before anything is retried."""
        checking = await self._note_on_card(request, f"{problem}. {ROLE_CHECKING_NOTE}")
        if checking is None:
            return await self._reload(request)
        request = checking
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen: Account | None = None
        unanswered: DirectoryError | None = None
        for delay in self.settle_delays or (0.0,):
            await asyncio.sleep(max(0.0, started + delay - loop.time()))
            try:
                seen = await self.directory.get_account(request.connect_guid or "")
            except DirectoryError as exc:
                unanswered = exc
                continue
            unanswered = None
            if seen is not None and seen.user_role == request.role_granted:
                return await self._complete(request)
        if unanswered is not None or seen is None:
            return await self._keep_unsettled(request, problem)
        return await self._role_failed(
            request,
            f"{problem}, and the account still had the role {seen.user_role} when the bot last "
            "looked. Connect may still carry the change out: a retry looks first.",
            surely_not_set=False,
        )

    async def _role_failed(
        self, request: ProvisioningRequest, why: str, *, surely_not_set: bool = True
    ) -> ProvisioningRequest:
        """The role was not set. A new account stays created (its step is done) and the request
        waits, incomplete, for an approver's retry of the role step alone (or for them to
        close it as it stands). A role change Connect refused goes back to pending (Approve is
        its retry); one whose call went unanswered (`surely_not_set` False: Connect may still
        carry it out) waits incomplete too, so nobody denies or re-decides it while it could
        still land — a retry or a close looks at the account first."""
        steps = request.with_step(StepAction.SET_ROLE, status=StepStatus.FAILED, error=why)
        if request.kind is RequestKind.ROLE_CHANGE and surely_not_set:
            return await self._back_to_pending(
                request, f"The role was not changed: {why}", steps=steps
            )
        error = (
            f"Setting the role failed: {why}"
            if request.kind is RequestKind.ROLE_CHANGE
            else f"The account was created, but setting its role failed: {why}"
        )
        failed = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.INCOMPLETE,
            now=self.clock(),
            changes={
                "steps": steps,
                "last_error": error,
                "lease_owner": None,
                "lease_expires_at": None,
            },
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
            lease_owner=self.instance_id,
        )
        if failed is None:
            return await self._reload(request)
        log.warning("request %s: the role step failed; waiting for a retry", request.id)
        self.metrics.request_finished(failed.kind.value, RequestState.INCOMPLETE.value)
        self._on_outbox()
        return failed

    async def _complete(
        self, request: ProvisioningRequest, *, note: str | None = None
    ) -> ProvisioningRequest:
        """Every step is done: the request is approved."""
        steps = request.steps
        if request.step(StepAction.SET_ROLE) is not None:
            steps = request.with_step(
                StepAction.SET_ROLE,
                status=StepStatus.DONE,
                error=None,
                note=note,
                done_at=self.clock(),
            )
        if _membership_due(request):
            # The role step is recorded before the groups: a retry never sets it again.
            recorded = await self.store.transition(
                request.id,
                from_states={RequestState.PROVISIONING},
                to_state=RequestState.PROVISIONING,
                now=self.clock(),
                changes={"steps": steps, "put_sent_at": None},
                lease_owner=self.instance_id,
            )
            if recorded is None:
                return await self._reload(request)
            return await self._add_to_groups(recorded)
        return await self._end(
            request,
            RequestState.APPROVED,
            {"steps": steps, "last_error": None, "put_sent_at": None},
        )

    async def _back_to_pending(
        self,
        request: ProvisioningRequest,
        error: str,
        *,
        steps: tuple[Step, ...] | None = None,
    ) -> ProvisioningRequest:
        """Approve is live again. This approval's PUT is over (put_sent_at cleared); a PUT whose
        answer never came stays on record (unknown_put_at), so that a "username in use" at the
        next approval is recognised as this request's account if Connect carried it out."""
        changes: dict[str, object] = {
            "last_error": error,
            "decided_by": None,
            "decided_at": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "put_sent_at": None,
            "role_granted": None,
            # The decision is undone: so are its approvals (they stay on record). Connect is
            # called again only when a new round reaches the count.
            "approval_round": request.approval_round + 1,
        }
        if steps is not None:
            changes["steps"] = steps
        pending = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.PENDING,
            now=self.clock(),
            changes=changes,
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
            lease_owner=self.instance_id,
        )
        if pending is None:
            return await self._reload(request)
        self.metrics.request_finished(pending.kind.value, "returned_to_pending")
        self._on_outbox()
        return pending

    async def _keep_unsettled(
        self, request: ProvisioningRequest, problem: str, *, because: str | None = None
    ) -> ProvisioningRequest:
        """Connect cannot even tell whether the account exists: let the lease run out now, so
        the recovery loop looks again at its next pass, and say so on the card (with why the
        look-up was refused, when it was: someone must act)."""
        note = f"{problem}. {UNSETTLED_NOTE}"
        if because:
            note = f"{problem}. The bot cannot look for the account: {because} {UNSETTLED_NOTE}"
        kept = await self._note_on_card(request, note, release=True)
        return kept if kept is not None else await self._reload(request)

    async def _reload(self, request: ProvisioningRequest) -> ProvisioningRequest:
        return await self.store.get(request.id) or request

    # -- recovery ------------------------------------------------------------------------------

    async def recover_expired_leases(self) -> list[ProvisioningRequest]:
        """Settle requests whose approver's process died (or could not tell) mid-PUT.

        Leases are renewed while their holder works and compared with the database's clock, so
        an expired lease means its holder stopped: it is taken over with one conditional update,
        and among replicas only one settles each request. A live lease is left alone, and so is
        anything this process itself is still working on. Several are settled side by side.
        """
        gate = asyncio.Semaphore(RECOVERY_CONCURRENCY)

        async def recover(stuck: ProvisioningRequest) -> ProvisioningRequest | None:
            async with gate:
                if stuck.id in self._in_flight:  # taken up here while waiting for the gate
                    return None
                return await self._recover(stuck)

        stuck = [r for r in await self.store.list_expired_leases() if r.id not in self._in_flight]
        settled = await asyncio.gather(*(recover(r) for r in stuck), return_exceptions=True)
        recovered = []
        for request, outcome in zip(stuck, settled, strict=True):
            if isinstance(outcome, BaseException):
                log.error(
                    "request %s: recovery failed: %s",
                    request.id,
                    type(outcome).__name__,
                    exc_info=outcome,
                )
            elif outcome is not None:
                recovered.append(outcome)
        return recovered

    async def _recover(self, stuck: ProvisioningRequest) -> ProvisioningRequest | None:
        taken = await self.store.transition(
            stuck.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.PROVISIONING,
            now=self.clock(),
            changes={"lease_owner": self.instance_id},
            lease_seconds=self.lease.total_seconds(),
            lease_expired=True,
        )
        if taken is None:
            return None
        self.metrics.lease_recovered()
        log.info("request %s: settling an interrupted approval", stuck.id)
        async with self._holding(taken.id):
            if taken.kind is RequestKind.NEW_GROUP:
                return await self._recover_group(taken, stuck)
            if _account_settled(taken):
                # The account is there (or the request changes an existing one): carry on with
                # the steps left, looking before setting a role again.
                return await self._remaining_steps(taken)
            if taken.put_sent_at is None:
                return await self._recover_unsent(taken)
            problem = _problem_of(stuck.last_error) or (
                "The bot stopped while creating this account"
            )
            return await self._settle_unknown(
                taken, problem, delays=self._delays_after(taken), announce=False
            )

    async def _recover_unsent(self, request: ProvisioningRequest) -> ProvisioningRequest:
        """The holder stopped before this approval's PUT went out: nothing was asked of Connect
        now, so an account found is this request's only by an earlier unanswered PUT."""
        try:
            user = await self.directory.find_account(request.username)
        except DirectoryError as exc:
            return await self._keep_unsettled(request, exc.problem)
        if user is not None:
            return await self._settle_found(request, user, found_by_looking=True)
        return await self._back_to_pending(
            request,
            "The bot stopped before it asked Connect to create this account, so none was "
            "created. Press Approve to try again.",
        )

    def _delays_after(self, taken: ProvisioningRequest) -> tuple[float, ...]:
        """Look now and, while Connect may still be carrying the PUT out, once more at the end
        of that time: a recovering replica waits as long as the holder would have. Both times
        are the database's (the takeover set the lease from its clock)."""
        if taken.put_sent_at is None or taken.lease_expires_at is None:
            return (0.0,)
        now = taken.lease_expires_at - self.lease
        left = (taken.put_sent_at + self.put_patience - now).total_seconds()
        left = min(left, self.put_patience.total_seconds())
        return (0.0,) if left <= 0 else (0.0, left)

    # -- group membership ----------------------------------------------------------------------

    async def _add_to_groups(self, request: ProvisioningRequest) -> ProvisioningRequest:
        """Add the account to each group still to do, one recorded step per group, under a
        live lease. Code 16 (a member already) counts as done, so an unanswered POST is settled
        by sending it again; a refusal leaves the request incomplete for a retry of the steps
        left."""
        groups = self._group_port()
        guid = request.connect_guid or ""
        for step in request.membership_steps:
            if step.status not in (StepStatus.PENDING, StepStatus.FAILED) or not step.target:
                continue
            held = await self.store.renew_lease(
                request.id, owner=self.instance_id, lease_seconds=self.lease.total_seconds()
            )
            if not held:
                log.warning("request %s: the lease ran out before a group was added", request.id)
                return await self._reload(request)
            added: bool | None = None
            unanswered: DirectoryError | None = None
            loop = asyncio.get_running_loop()
            started = loop.time()
            for delay in (0.0, *self.settle_delays):
                await asyncio.sleep(max(0.0, started + delay - loop.time()))
                try:
                    added = await groups.add_member(step.target, guid)
                except DirectoryRefused as exc:
                    log.warning(
                        "request %s: Connect refused a group member: %s", request.id, exc.problem
                    )
                    return await self._group_step_failed(request, step.target, exc.explanation)
                except DirectoryError as exc:
                    unanswered = exc
                    continue
                unanswered = None
                break
            if unanswered is not None or added is None:
                problem = unanswered.problem if unanswered else "Connect did not answer"
                return await self._keep_unsettled(request, problem)
            recorded = await self.store.transition(
                request.id,
                from_states={RequestState.PROVISIONING},
                to_state=RequestState.PROVISIONING,
                now=self.clock(),
                changes={
                    "steps": request.with_target_step(
                        step.target,
                        status=StepStatus.DONE,
                        error=None,
                        note=None if added else "It was a member already.",
                        done_at=self.clock(),
                    ),
                    "last_error": None,
                },
                lease_owner=self.instance_id,
            )
            if recorded is None:
                return await self._reload(request)
            request = recorded
        return await self._end(
            request,
            RequestState.APPROVED,
            {"steps": request.steps, "last_error": None, "put_sent_at": None},
        )

    async def _group_step_failed(
        self, request: ProvisioningRequest, target: str, why: str
    ) -> ProvisioningRequest:
        """A group refused the member: the account stays as it is (its earlier steps are done)
        and the request waits, incomplete, for a retry of the steps left or a close."""
        step = next(s for s in request.membership_steps if s.target == target)
        name = step.target_name or "a group"
        failed = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.INCOMPLETE,
            now=self.clock(),
            changes={
                "steps": request.with_target_step(target, status=StepStatus.FAILED, error=why),
                "last_error": f"Adding the account to the group {name} failed: {why}",
                "lease_owner": None,
                "lease_expires_at": None,
            },
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
            lease_owner=self.instance_id,
        )
        if failed is None:
            return await self._reload(request)
        self._on_outbox()
        return failed

    # -- directory groups ----------------------------------------------------------------------

    def _group_port(self) -> GroupDirectory:
        if self.groups is None:  # pragma: no cover - wired in production and in every test
            raise RuntimeError("a group request needs the group directory")
        return self.groups

    async def _bring_in_group(self, request: ProvisioningRequest) -> ProvisioningRequest:
        """PUT /v1/groups {temp_ticket}, at most once per approval (a stale ticket: once more
        with a fresh one), under a live lease and recorded before it is sent, like an
        account's PUT. An unanswered PUT is settled by looking the group up by name."""
        groups = self._group_port()
        ticket = request.temp_ticket
        for attempt in (1, 2):
            sent = await self.store.mark_put_sent(
                request.id,
                owner=self.instance_id,
                lease_seconds=self.lease.total_seconds(),
                now=self.clock(),
            )
            if sent is None:
                log.warning("request %s: the lease ran out before the PUT; not sent", request.id)
                return await self._reload(request)
            request = sent
            try:
                group = await groups.create_group(ticket)
            except DirectoryRefused as exc:
                answered = await self._put_answered(request)
                if answered is None:
                    return await self._reload(request)
                request = answered
                if exc.kind is DirectoryProblem.GROUP_EXISTS:  # codes 131 and 15
                    return await self._group_there(request)
                if exc.kind is DirectoryProblem.STALE_TICKET and attempt == 1:
                    fresh = await self._fresh_group_ticket(request)
                    if isinstance(fresh, ProvisioningRequest):
                        return fresh
                    ticket = fresh
                    continue
                log.warning("request %s: Connect refused the group: %s", request.id, exc.problem)
                return await self._back_to_pending(request, exc.explanation)
            except DirectoryError as exc:
                log.warning(
                    "request %s: outcome of the group PUT unknown: %s", request.id, exc.problem
                )
                return await self._settle_group(request, exc.problem, delays=self.settle_delays)
            return await self._group_settled(request, group, created=True)
        raise AssertionError("unreachable: the loop returns on its second attempt")

    async def _fresh_group_ticket(self, request: ProvisioningRequest) -> str | ProvisioningRequest:
        """Code 127: search the directory again and take the one group of that name's ticket."""
        name = request.group_name or ""
        try:
            found = await self._group_port().find_directory_groups(name)
        except DirectoryError as exc:
            return await self._back_to_pending(request, _group_not_created(exc.problem))
        if not found:
            return await self._back_to_pending(request, f"{name} is no longer in the directory.")
        if len(found) > 1:
            return await self._back_to_pending(
                request,
                f"Several directory groups are now named {name}, so the bot cannot tell which "
                "one was asked for. Deny this request and ask again once the name is unique.",
            )
        [group] = found
        if group.in_connect:
            return await self._group_there(request)
        updated = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.PROVISIONING,
            now=self.clock(),
            changes={"temp_ticket": group.temp_ticket},
            lease_owner=self.instance_id,
        )
        return group.temp_ticket if updated is not None else await self._reload(request)

    async def _in_connect(self, request: ProvisioningRequest) -> GroupRef | None:
        """The Connect group this request's directory group became, as the directory says (its
        remote search gives the GUID of a directory group that is in Connect). Never a look-up
        by name among Connect's groups: another group may have the same name. None when it is
        not in Connect, or when the directory cannot tell one group of that name."""
        name = request.group_name or ""
        found = await self._group_port().find_directory_groups(name)
        if len(found) != 1 or not found[0].guid:
            return None
        return GroupRef(guid=found[0].guid, name=name)

    async def _group_there(self, request: ProvisioningRequest) -> ProvisioningRequest:
        """Connect says the group is in already (131), or its name is taken (15): this
        request's if an earlier PUT of it went unanswered, else it was brought in by someone
        else meanwhile — or another Connect group has the name, which the directory tells."""
        try:
            group = await self._in_connect(request)
        except DirectoryError as exc:
            return await self._keep_unsettled(request, exc.problem)
        if group is None:
            return await self._back_to_pending(
                request,
                f"Connect has a group named {request.group_name} already, but the directory "
                "does not show it as this directory group, so the bot did not bring it in. "
                "A Connect administrator can tell the two apart; deny this request meanwhile.",
            )
        if request.unknown_put_at is not None:
            note = (
                "Brought in during this approval: Connect did not confirm an earlier request in "
                "time, and said afterwards that the group was there."
            )
            if group is not None:
                return await self._group_settled(request, group, created=True, note=note)
        return await self._group_settled(request, group, created=False)

    async def _settle_group(
        self,
        request: ProvisioningRequest,
        problem: str,
        *,
        delays: Sequence[float],
        announce: bool = True,
    ) -> ProvisioningRequest:
        """The group PUT may or may not have happened: look the group up by name at `delays`
        before anything is retried (as `_settle_unknown` does for an account)."""
        since = request.unknown_put_at or request.put_sent_at
        if announce or (since is not None and since != request.unknown_put_at):
            note = f"{problem}. {GROUP_CHECKING_NOTE}" if announce else request.last_error
            checking = await self._note_on_card(request, note, unknown_put_at=since)
            if checking is None:
                return await self._reload(request)
            request = checking
        loop = asyncio.get_running_loop()
        started = loop.time()
        unanswered: DirectoryError | None = None
        for delay in delays or (0.0,):
            await asyncio.sleep(max(0.0, started + delay - loop.time()))
            try:
                group = await self._in_connect(request)
            except DirectoryRefused as exc:
                log.error("request %s: Connect refused the look-up: %s", request.id, exc.problem)
                return await self._keep_unsettled(request, problem, because=exc.explanation)
            except DirectoryError as exc:
                unanswered = exc
                continue
            unanswered = None
            if group is not None:
                note = (
                    "Brought in during this approval: Connect did not confirm the request in "
                    "time, and the bot found the group afterwards."
                )
                return await self._group_settled(request, group, created=True, note=note)
        if unanswered is not None:
            return await self._keep_unsettled(request, problem)
        return await self._back_to_pending(request, _group_not_created(problem))

    async def _recover_group(
        self, taken: ProvisioningRequest, stuck: ProvisioningRequest
    ) -> ProvisioningRequest:
        if taken.put_sent_at is None:
            try:
                group = await self._in_connect(taken)
            except DirectoryError as exc:
                return await self._keep_unsettled(taken, exc.problem)
            if group is not None:
                # Only an earlier unanswered PUT of this request can have brought it in.
                ours = taken.unknown_put_at is not None
                return await self._group_settled(taken, group, created=ours)
            return await self._back_to_pending(
                taken,
                "The bot stopped before it asked Connect to bring the group in, so nothing "
                "changed. Press Approve to try again.",
            )
        problem = _problem_of(stuck.last_error) or "The bot stopped while bringing the group in"
        return await self._settle_group(
            taken, problem, delays=self._delays_after(taken), announce=False
        )

    async def _group_settled(
        self,
        request: ProvisioningRequest,
        group: GroupRef | None,
        *,
        created: bool,
        note: str | None = None,
    ) -> ProvisioningRequest:
        """The group is in Connect: brought in by this request (APPROVED) or there before
        (ALREADY_EXISTS)."""
        if created:
            steps = request.with_step(
                StepAction.CREATE_GROUP, status=StepStatus.DONE, error=None, done_at=self.clock()
            )
        else:
            steps = request.with_step(
                StepAction.CREATE_GROUP,
                status=StepStatus.SKIPPED,
                note="The group was in Connect already.",
            )
            if group is None:
                note = (
                    "Connect says the group is there already, but the bot cannot find it by name."
                )
        changes: dict[str, object] = {
            "connect_guid": group.guid if group is not None else None,
            "temp_ticket": "",  # a credential with no further use: do not keep it
            "last_error": None,
            "outcome_note": note,
            "put_sent_at": None,
            "steps": steps,
        }
        state = RequestState.APPROVED if created else RequestState.ALREADY_EXISTS
        return await self._end(request, state, changes)


def _group_not_created(problem: str) -> str:
    return f"{problem}, and the group was not brought in. Press Approve to try again."
