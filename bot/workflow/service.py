"""The provisioning workflow: search, request, approve, deny, cancel, the lists people ask for,
the timers (expiry, reminders), and settling interrupted work.

Pure Python over the ports in `ports.py`: no Slack, HTTP or SQL types. Every state change is one
conditional update in the store, and the messages it owes people are written in the same
transaction (the outbox), so a crash or a second replica can never decide a request twice or forget
to tell someone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.cache import KeyedCache, cache_key
from bot.connect.errors import (
    CODE_NOT_AUTHENTICATED,
    CODE_PROVIDER_CANNOT_CREATE,
    CODE_PROVIDER_UNSUPPORTED,
    CODE_STALE_TICKET,
    CODE_TOO_MANY_RESULTS,
    CODE_USER_LOCKED,
    CODE_USERNAME_IN_USE,
    ConnectAPIError,
    ConnectError,
    ConnectProtocolError,
    ConnectUnavailable,
)
from bot.connect.models import ConnectUser, RemoteSearchResult
from bot.logs import request_id_var
from bot.workflow.models import (
    NewRequest,
    OutboxItem,
    OutboxKind,
    Person,
    ProvisioningRequest,
)
from bot.workflow.ports import (
    ApproverCheckUnavailable,
    ApproverPolicy,
    ApproverVerdict,
    DirectoryClient,
    DuplicateRequestError,
    RequestStore,
)
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)

MAX_JUSTIFICATION = 1000
MAX_DENY_REASON = 500
# Appended to the card's error while an approval's outcome cannot be checked; removed again when
# the lease recovery looks once more.
UNSETTLED_NOTE = "The bot could not check the outcome yet and will look again shortly."
# Appended to the card's error while the bot looks for the account a PUT may have created.
CHECKING_NOTE = (
    "The bot is checking whether Connect created the account; Approve comes back if it did not."
)
# Connect's clock is not the database's (put_sent_at is the database's). An account whose
# created_time is at most this much earlier than put_sent_at still counts as created by this
# approval. Servers kept by NTP agree within a second; five minutes also covers a VM or container
# without it, while an account somebody else made in those minutes (after the request was filed,
# when the person had none) is rare, and then merely reported as this approval's.
CLOCK_SKEW_MARGIN = timedelta(minutes=5)


def settle_schedule(connect_timeout: float) -> tuple[float, ...]:
    """When to look for the account after a PUT's outcome became unknown, in seconds after that
    moment: spread over about two CONNECT_TIMEOUTs, since Connect may still be carrying out a
    PUT the bot stopped waiting for."""
    return tuple(connect_timeout * share for share in (0.5, 1.0, 1.5, 2.0))


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    return secrets.token_hex(8)


# ---------------------------------------------------------------------------------------------
# Outcomes: what happened, for the caller (a Slack listener) to render.


class SearchProblem(StrEnum):
    TOO_MANY_RESULTS = "too_many_results"
    REMOTE_SEARCH_UNSUPPORTED = "remote_search_unsupported"
    CONNECT_UNAVAILABLE = "connect_unavailable"
    CONNECT_GARBAGE = "connect_garbage"
    CONFIGURATION = "configuration"


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    result: RemoteSearchResult | None = None
    problem: SearchProblem | None = None


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    SELF_APPROVAL = "self_approval"
    NOT_APPROVER = "not_approver"  # not a member of the approver channel
    GUEST = "guest"
    EXTERNAL = "external"  # from another organisation
    BOT = "bot"
    DEACTIVATED = "deactivated"
    UNSAFE_CHANNEL = "unsafe_channel"  # the approver channel is public
    ALREADY_DECIDED = "already_decided"
    CANNOT_CHECK = "cannot_check"
    NOT_REQUESTER = "not_requester"  # only the requester may cancel


# Why someone who is not an approver is refused, in the workflow's terms.
_VERDICT_REFUSALS = {
    ApproverVerdict.NOT_MEMBER: Refusal.NOT_APPROVER,
    ApproverVerdict.GUEST: Refusal.GUEST,
    ApproverVerdict.EXTERNAL: Refusal.EXTERNAL,
    ApproverVerdict.BOT: Refusal.BOT,
    ApproverVerdict.DEACTIVATED: Refusal.DEACTIVATED,
    ApproverVerdict.UNSAFE_CHANNEL: Refusal.UNSAFE_CHANNEL,
}


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal
    request: ProvisioningRequest | None = None


@dataclass(frozen=True, slots=True)
class Decided:
    """The click won; `request` is the request as it ended up (approved, pending again, …)."""

    request: ProvisioningRequest


class FileProblem(StrEnum):
    EMPTY_JUSTIFICATION = "empty_justification"
    ALREADY_HAS_ACCOUNT = "already_has_account"
    NOT_IN_DIRECTORY = "not_in_directory"
    CANNOT_VERIFY = "cannot_verify"


@dataclass(frozen=True, slots=True)
class Filed:
    request: ProvisioningRequest


@dataclass(frozen=True, slots=True)
class Duplicate:
    existing: ProvisioningRequest


@dataclass(frozen=True, slots=True)
class NotFiled:
    problem: FileProblem
    guid: str | None = None


FileOutcome = Filed | Duplicate | NotFiled
DecisionOutcome = Decided | Refused


@dataclass(frozen=True, slots=True)
class RequestList:
    """Some requests, and how many matched in all (for "and N more")."""

    requests: tuple[ProvisioningRequest, ...]
    total: int


@dataclass(frozen=True, slots=True)
class HomeContent:
    """What a person's App Home shows: their own requests and, for approvers, what waits."""

    mine: RequestList
    # None when the person may not approve, or when that cannot be known (see `waiting_refusal`).
    waiting: RequestList | None
    waiting_refusal: Refusal | None = None


@dataclass(frozen=True, slots=True)
class TimerReport:
    """What one timer pass did: ids of the requests expired and reminded about."""

    expired: tuple[str, ...] = ()
    reminded: tuple[str, ...] = ()


# Plain words for the card when a decision could not be carried out.
def describe_connect_refusal(exc: ConnectAPIError) -> str:
    if exc.status == 401 or exc.code == CODE_NOT_AUTHENTICATED:
        return (
            "Connect rejected the bot's API key (401). An administrator must give the bot a valid "
            "CONNECT_API_KEY; then press Approve again."
        )
    if exc.code in (CODE_PROVIDER_CANNOT_CREATE, CODE_PROVIDER_UNSUPPORTED):
        return (
            f"Connect's authentication provider cannot create accounts from the directory "
            f"(code {exc.code}). An administrator must check Connect's authentication settings."
        )
    if exc.code == CODE_USER_LOCKED:
        return "Connect says this account is locked (code 50). An administrator must unlock it."
    if exc.status == 403:
        return (
            f"The bot's API key lacks the permission to create users (403, code {exc.code}). "
            "It must belong to a publisher or administrator; then press Approve again."
        )
    if exc.code == CODE_STALE_TICKET:
        return (
            "Connect no longer accepts this person's directory ticket, even after a fresh search. "
            "Try again later, or ask the requester to search again."
        )
    return f"Connect refused to create the account ({exc.status}, code {exc.code})."


def connect_problem(exc: ConnectError) -> str:
    """What went wrong, as the start of a sentence ("Connect did not answer in time")."""
    if isinstance(exc, ConnectUnavailable):
        what = {
            "timeout": "did not answer in time",
            "connection": "could not be reached",
            "server_error": f"failed on its side ({exc.status})",
            "rate_limited": "asked the bot to slow down (429)",
        }.get(exc.reason, "failed")
    else:
        what = "gave an answer the bot could not read"
    return f"Connect {what}"


def describe_unavailable(exc: ConnectError) -> str:
    return not_created(connect_problem(exc))


def not_created(problem: str) -> str:
    return f"{problem}, and no account was created. Press Approve to try again."


def _problem_of(note: str | None) -> str | None:
    """The problem a checking or unsettled note starts with (see `connect_problem`)."""
    for suffix in (CHECKING_NOTE, UNSETTLED_NOTE):
        if note and note.endswith(f". {suffix}"):
            return note.removesuffix(f". {suffix}")
    return None


class ProvisioningService:
    def __init__(
        self,
        *,
        store: RequestStore,
        directory: DirectoryClient,
        approvers: ApproverPolicy,
        instance_id: str,
        search_limit: int = 50,
        search_cache: KeyedCache | None = None,
        search_cache_ttl: float = 30.0,
        search_cache_scope: str = "",
        lease_seconds: float = 120.0,
        settle_delays: Sequence[float] = settle_schedule(10.0),
        request_expiry_hours: float = 7 * 24.0,
        reminder_after_hours: float = 24.0,
        timer_batch: int = 200,
        clock: Callable[[], datetime] = utcnow,
        id_factory: Callable[[], str] = new_request_id,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.approvers = approvers
        self.instance_id = instance_id
        self.search_limit = search_limit
        self.search_cache = search_cache
        self.search_cache_ttl = search_cache_ttl
        # Names the directory the results come from (the Connect server), so two deployments
        # sharing one Redis never show each other's directory.
        self.search_cache_scope = search_cache_scope
        self.lease = timedelta(seconds=lease_seconds)
        self.settle_delays = tuple(settle_delays)
        self.request_expiry = timedelta(hours=request_expiry_hours)
        self.reminder_after = timedelta(hours=reminder_after_hours)
        self.timer_batch = timer_batch
        self.clock = clock
        self.id_factory = id_factory
        self._on_outbox = on_outbox or (lambda: None)
        # Requests this process is working on (under a lease it renews): its own lease recovery
        # leaves them alone even if a renewal failed and the lease ran out.
        self._in_flight: set[str] = set()

    # -- search --------------------------------------------------------------------------------

    async def search(self, prefix: str) -> SearchOutcome:
        try:
            result = await self._search_remote(prefix)
        except ConnectAPIError as exc:
            if exc.code == CODE_TOO_MANY_RESULTS:
                return SearchOutcome(problem=SearchProblem.TOO_MANY_RESULTS)
            if exc.code in (CODE_PROVIDER_UNSUPPORTED, CODE_PROVIDER_CANNOT_CREATE):
                return SearchOutcome(problem=SearchProblem.REMOTE_SEARCH_UNSUPPORTED)
            if exc.is_configuration_problem:
                log.error("remote search refused: %s", exc)
                return SearchOutcome(problem=SearchProblem.CONFIGURATION)
            log.warning("remote search failed: %s", exc)
            return SearchOutcome(problem=SearchProblem.CONNECT_GARBAGE)
        except ConnectUnavailable as exc:
            log.warning("remote search unavailable: %s", exc)
            return SearchOutcome(problem=SearchProblem.CONNECT_UNAVAILABLE)
        except ConnectProtocolError as exc:
            log.warning("remote search answered garbage: %s", exc)
            return SearchOutcome(problem=SearchProblem.CONNECT_GARBAGE)
        return SearchOutcome(result=result)

    async def _search_remote(self, prefix: str) -> RemoteSearchResult:
        async def compute() -> RemoteSearchResult:
            return await self.directory.search_remote(prefix, limit=self.search_limit)

        if self.search_cache is None:
            return await compute()
        return await self.search_cache.get_or_compute(
            "search:" + cache_key(self.search_cache_scope, prefix, self.search_limit),
            compute,
            ttl=self.search_cache_ttl,
            dump=lambda result: result.model_dump(mode="json"),
            load=RemoteSearchResult.model_validate,
        )

    # -- request -------------------------------------------------------------------------------

    async def file_request(
        self,
        *,
        requester_id: str,
        person: Person,
        justification: str,
        response_url: str | None = None,
    ) -> FileOutcome:
        justification = justification.strip()[:MAX_JUSTIFICATION]
        if not justification:
            return NotFiled(FileProblem.EMPTY_JUSTIFICATION)
        existing = await self.store.find_active(person.username)
        if existing is not None:
            return Duplicate(existing)

        # The button's value comes back from the requester's client, so only its username is
        # taken from it: the ticket and the identity the approvers see are read from Connect
        # again. Were the button trusted, it could pair one person's name with another's ticket.
        try:
            fresh = await self.directory.find_remote_user(person.username)
        except ConnectError as exc:
            log.warning("could not confirm the person in the directory: %s", type(exc).__name__)
            return NotFiled(FileProblem.CANNOT_VERIFY)
        if fresh is None or not fresh.temp_ticket:
            return NotFiled(FileProblem.NOT_IN_DIRECTORY)
        if fresh.has_account:
            return NotFiled(FileProblem.ALREADY_HAS_ACCOUNT, guid=fresh.guid)
        person = Person(
            username=fresh.username,
            full_name=fresh.full_name,
            email=fresh.email,
            temp_ticket=fresh.temp_ticket,
        )

        outbox = [OutboxItem(OutboxKind.POST_CARD)]
        if response_url:
            outbox.append(OutboxItem(OutboxKind.CONFIRM_REQUESTER, {"response_url": response_url}))
        new = NewRequest(
            request_id=self.id_factory(),
            requester_id=requester_id,
            person=person,
            justification=justification,
            created_at=self.clock(),
        )
        try:
            request = await self.store.create(new, outbox=outbox)
        except DuplicateRequestError as exc:
            return Duplicate(exc.existing)
        # From here on the request's own id is the one its logs carry; this line links the two.
        log.info(
            "request %s filed by %s (from interaction %s)",
            request.id,
            requester_id,
            request_id_var.get(),
        )
        self._on_outbox()
        return Filed(request)

    # -- decide ----------------------------------------------------------------------------------

    async def check_can_decide(
        self, request_id: str, user_id: str
    ) -> ProvisioningRequest | Refused:
        """The authorisation every decision goes through, checked on the server at click time.
        Returns the request (as read for the check) when the user may decide it."""
        request = await self.store.get(request_id)
        if request is None:
            return Refused(Refusal.NOT_FOUND)
        if user_id == request.requester_id:
            return Refused(Refusal.SELF_APPROVAL, request)
        refused = await self._approver_refusal(user_id)
        if refused is not None:
            return Refused(refused, request)
        if request.state is not RequestState.PENDING:
            return Refused(Refusal.ALREADY_DECIDED, request)
        return request

    async def _move_pending(
        self,
        request_id: str,
        to_state: RequestState,
        *,
        now: datetime,
        changes: dict[str, object],
        outbox: list[OutboxItem],
        lease_seconds: float | None = None,
    ) -> ProvisioningRequest | Refused:
        """One conditional UPDATE out of `pending`; whoever loses the race is told who won."""
        moved = await self.store.transition(
            request_id,
            from_states={RequestState.PENDING},
            to_state=to_state,
            now=now,
            changes=changes,
            outbox=outbox,
            lease_seconds=lease_seconds,
        )
        if moved is None:
            return Refused(Refusal.ALREADY_DECIDED, await self.store.get(request_id))
        self._on_outbox()
        return moved

    async def _approver_refusal(self, user_id: str) -> Refusal | None:
        """The approver check shared by decisions and by what only approvers may see."""
        try:
            verdict = await self.approvers.approver_verdict(user_id)
        except ApproverCheckUnavailable:
            return Refusal.CANNOT_CHECK
        if verdict is ApproverVerdict.APPROVER:
            return None
        return _VERDICT_REFUSALS.get(verdict, Refusal.NOT_APPROVER)

    async def approve(self, request_id: str, approver_id: str) -> DecisionOutcome:
        allowed = await self.check_can_decide(request_id, approver_id)
        if isinstance(allowed, Refused):
            return allowed
        now = self.clock()
        claimed = await self._move_pending(
            request_id,
            RequestState.PROVISIONING,
            now=now,
            changes={
                "decided_by": approver_id,
                "decided_at": now,
                "lease_owner": self.instance_id,
                "last_error": None,
                "outcome_note": None,
            },
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
            # By the database's clock, which every replica shares.
            lease_seconds=self.lease.total_seconds(),
        )
        if isinstance(claimed, Refused):
            return claimed
        log.info("request %s approved by %s; creating the account", request_id, approver_id)
        async with self._holding(request_id):
            return Decided(await self._provision(claimed))

    async def deny(self, request_id: str, approver_id: str, reason: str) -> DecisionOutcome:
        allowed = await self.check_can_decide(request_id, approver_id)
        if isinstance(allowed, Refused):
            return allowed
        now = self.clock()
        denied = await self._move_pending(
            request_id,
            RequestState.DENIED,
            now=now,
            changes={
                "decided_by": approver_id,
                "decided_at": now,
                "deny_reason": reason.strip()[:MAX_DENY_REASON],
                "temp_ticket": "",
            },
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD), OutboxItem(OutboxKind.NOTIFY_REQUESTER)],
        )
        if isinstance(denied, Refused):
            return denied
        log.info("request %s denied by %s", request_id, approver_id)
        return Decided(denied)

    # -- cancel ----------------------------------------------------------------------------------

    async def cancel(self, request_id: str, user_id: str) -> DecisionOutcome:
        """The requester withdraws a request nobody has decided yet."""
        request = await self.store.get(request_id)
        if request is None:
            return Refused(Refusal.NOT_FOUND)
        if user_id != request.requester_id:
            return Refused(Refusal.NOT_REQUESTER, request)
        if request.state is not RequestState.PENDING:
            return Refused(Refusal.ALREADY_DECIDED, request)
        now = self.clock()
        cancelled = await self._move_pending(
            request_id,
            RequestState.CANCELLED,
            now=now,
            changes={"decided_by": user_id, "decided_at": now, "temp_ticket": ""},
            # The requester is answered on the spot (they clicked); the approvers see the card.
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
        )
        if isinstance(cancelled, Refused):  # an approver's click won the race
            return cancelled
        log.info("request %s cancelled by its requester", request_id)
        return Decided(cancelled)

    # -- views -----------------------------------------------------------------------------------

    async def pending_requests(self, user_id: str, *, limit: int) -> RequestList | Refused:
        """What waits for an approver, oldest first; only approvers may see it (directory data
        and justifications are for the people who decide)."""
        refused = await self._approver_refusal(user_id)
        if refused is not None:
            return Refused(refused)
        states = {RequestState.PENDING}
        requests = await self.store.list_requests(states=states, limit=limit)
        total = await self.store.count_requests(states=states)
        return RequestList(tuple(requests), max(total, len(requests)))

    async def my_requests(self, user_id: str, *, limit: int) -> RequestList:
        """The person's own requests, most recent first."""
        requests = await self.store.list_requests(
            requester_id=user_id, newest_first=True, limit=limit
        )
        total = await self.store.count_requests(requester_id=user_id)
        return RequestList(tuple(requests), max(total, len(requests)))

    async def home(self, user_id: str, *, mine_limit: int, waiting_limit: int) -> HomeContent:
        mine = await self.my_requests(user_id, limit=mine_limit)
        waiting = await self.pending_requests(user_id, limit=waiting_limit)
        if isinstance(waiting, Refused):
            return HomeContent(mine=mine, waiting=None, waiting_refusal=waiting.reason)
        return HomeContent(mine=mine, waiting=waiting)

    # -- timers ----------------------------------------------------------------------------------

    async def run_timers(self, now: datetime | None = None) -> TimerReport:
        """Expire requests nobody decided in time, then remind approvers of the ones waiting.

        Timers are rows, not sleeps: each pass finds what is due from the database, and each
        expiry or reminder is claimed with one conditional UPDATE, so a restart loses nothing
        and two replicas running the same pass act once. Each pass handles at most
        `timer_batch` of each; the rest wait for the next pass.
        """
        now = now or self.clock()
        expired = await self._expire_due(now)
        reminded = await self._remind_due(now)
        if expired or reminded:
            self._on_outbox()
        return TimerReport(expired=tuple(expired), reminded=tuple(reminded))

    async def _expire_due(self, now: datetime) -> list[str]:
        pending = {RequestState.PENDING}
        due = await self.store.list_requests(
            states=pending, created_before=now - self.request_expiry, limit=self.timer_batch
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
                expired.append(request.id)
        return expired

    async def _remind_due(self, now: datetime) -> list[str]:
        due_before = now - self.reminder_after
        reminded = []
        for request in await self.store.list_reminders_due(
            due_before=due_before, limit=self.timer_batch
        ):
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

    # -- carrying out an approval (the holder of the lease only) -------------------------------

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
                user = await self.directory.create_from_ticket(ticket)
            except ConnectAPIError as exc:
                if exc.code == CODE_USERNAME_IN_USE:
                    return await self._settle_existing(request)
                if exc.code == CODE_STALE_TICKET and attempt == 1:
                    fresh_ticket = await self._fresh_ticket(request)
                    if isinstance(fresh_ticket, ProvisioningRequest):
                        return fresh_ticket  # settled while looking (no longer in the directory…)
                    ticket = fresh_ticket
                    continue
                log.warning("request %s: Connect refused the PUT: %s", request.id, exc)
                return await self._back_to_pending(
                    request, describe_connect_refusal(exc), nothing_sent=True
                )
            except (ConnectUnavailable, ConnectProtocolError) as exc:
                log.warning("request %s: outcome of the PUT unknown: %s", request.id, exc)
                return await self._settle_unknown(
                    request, connect_problem(exc), delays=self.settle_delays
                )
            if user.username != request.username:
                log.error(
                    "request %s: Connect created %r for a ticket filed as %r",
                    request.id,
                    user.username,
                    request.username,
                )
            return await self._finish(request, RequestState.APPROVED, user.guid)
        raise AssertionError("unreachable: the loop returns on its second attempt")

    async def _fresh_ticket(self, request: ProvisioningRequest) -> str | ProvisioningRequest:
        """Code 127: search again by username and take the exact match's ticket."""
        try:
            fresh = await self.directory.find_remote_user(request.username)
        except ConnectError as exc:
            return await self._back_to_pending(
                request, describe_unavailable(exc), nothing_sent=True
            )
        if fresh is None:
            return await self._back_to_pending(
                request, f"{request.username} is no longer in the directory.", nothing_sent=True
            )
        if fresh.has_account and fresh.guid:
            return await self._finish(request, RequestState.ALREADY_EXISTS, fresh.guid)
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
            user = await self.directory.find_user(request.username)
        except ConnectError as exc:
            return await self._keep_unsettled(request, connect_problem(exc))
        if user is None:
            # Case-sensitive usernames: Connect says taken, but no exact match is visible.
            return await self._back_to_pending(
                request,
                f"Connect says the username {request.username} is already in use, but the bot "
                "cannot find that account. An administrator should look in Connect.",
            )
        return await self._settle_found(request, user, outcome_unknown=False)

    async def _settle_found(
        self, request: ProvisioningRequest, user: ConnectUser, *, outcome_unknown: bool
    ) -> ProvisioningRequest:
        """The account exists: created by this request's PUT, or there before it was sent?

        Connect's created_time against put_sent_at (both kept, so a replica settling after a
        crash decides the same way), with CLOCK_SKEW_MARGIN for the two clocks. put_sent_at is
        the first PUT of this approval, or of an earlier one whose outcome stayed unknown (which
        Connect may have carried out since). Without both times: an unknown outcome counts as
        created, a "username in use" as already there.
        """
        created, sent = user.created_time, request.put_sent_at
        ours = (
            outcome_unknown
            if created is None or sent is None
            else (created >= sent - CLOCK_SKEW_MARGIN)
        )
        if ours:
            note = (
                "Created during this approval: Connect did not confirm the request in time, "
                "and the bot found the account afterwards."
                if outcome_unknown
                else "Created during this approval: Connect answered that the username was in "
                "use, but the account appeared only after the bot had asked Connect to create "
                "it (an earlier, slower request went through)."
            )
            return await self._finish(request, RequestState.APPROVED, user.guid, note=note)
        note = None
        if outcome_unknown and created is not None:
            note = (
                f"The account was created on {created:%Y-%m-%d at %H:%M} UTC, before this "
                "approval asked Connect for it."
            )
        return await self._finish(request, RequestState.ALREADY_EXISTS, user.guid, note=note)

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
        if announce:
            checking = await self._note_on_card(request, f"{problem}. {CHECKING_NOTE}")
            if checking is None:
                return await self._reload(request)
            request = checking
        loop = asyncio.get_running_loop()
        started = loop.time()
        unanswered: ConnectError | None = None
        for delay in delays or (0.0,):
            await asyncio.sleep(max(0.0, started + delay - loop.time()))
            try:
                user = await self.directory.find_user(request.username)
            except ConnectError as exc:
                unanswered = exc
                continue
            unanswered = None
            if user is not None:
                return await self._settle_found(request, user, outcome_unknown=True)
        if unanswered is not None:
            return await self._keep_unsettled(request, problem)
        return await self._back_to_pending(request, not_created(problem))

    async def _note_on_card(
        self, request: ProvisioningRequest, note: str, *, release: bool = False
    ) -> ProvisioningRequest | None:
        """Say on the card (through last_error) where a provisioning request stands; `release`
        lets the lease run out now so the recovery loop takes it from here."""
        noted = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=RequestState.PROVISIONING,
            now=self.clock(),
            changes={"last_error": note},
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
            lease_owner=self.instance_id,
            lease_seconds=0.0 if release else None,
        )
        if noted is not None:
            self._on_outbox()
        return noted

    async def _finish(
        self,
        request: ProvisioningRequest,
        state: RequestState,
        guid: str,
        *,
        note: str | None = None,
    ) -> ProvisioningRequest:
        outbox = [OutboxItem(OutboxKind.UPDATE_CARD), OutboxItem(OutboxKind.NOTIFY_REQUESTER)]
        if state is RequestState.APPROVED and request.email:
            outbox.append(OutboxItem(OutboxKind.WELCOME))
        finished = await self.store.transition(
            request.id,
            from_states={RequestState.PROVISIONING},
            to_state=state,
            now=self.clock(),
            changes={
                "connect_guid": guid,
                "temp_ticket": "",  # a credential with no further use: do not keep it
                "last_error": None,
                "outcome_note": note,
                "lease_owner": None,
                "lease_expires_at": None,
            },
            outbox=outbox,
            lease_owner=self.instance_id,
        )
        if finished is None:
            return await self._reload(request)
        log.info("request %s ended %s (guid %s)", request.id, state, guid)
        self._on_outbox()
        return finished

    async def _back_to_pending(
        self, request: ProvisioningRequest, error: str, *, nothing_sent: bool = False
    ) -> ProvisioningRequest:
        """Approve is live again. put_sent_at is kept unless Connect refused for certain: a PUT
        whose outcome was unknown may still be carried out, and a "username in use" at the next
        approval must then be recognised as this request's account."""
        changes: dict[str, object] = {
            "last_error": error,
            "decided_by": None,
            "decided_at": None,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if nothing_sent:
            changes["put_sent_at"] = None
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
        self._on_outbox()
        return pending

    async def _keep_unsettled(
        self, request: ProvisioningRequest, problem: str
    ) -> ProvisioningRequest:
        """Connect cannot even tell whether the account exists: let the lease run out now, so
        the recovery loop looks again at its next pass, and say so on the card."""
        kept = await self._note_on_card(request, f"{problem}. {UNSETTLED_NOTE}", release=True)
        return kept if kept is not None else await self._reload(request)

    async def _reload(self, request: ProvisioningRequest) -> ProvisioningRequest:
        return await self.store.get(request.id) or request

    # -- recovery ------------------------------------------------------------------------------

    async def recover_expired_leases(self) -> list[ProvisioningRequest]:
        """Settle requests whose approver's process died (or could not tell) mid-PUT.

        Leases are renewed while their holder works and compared with the database's clock, so
        an expired lease means its holder stopped: it is taken over with one conditional update,
        and among replicas only one settles each request. A live lease is left alone, and so is
        anything this process itself is still working on.

        One look-up settles it: the holder renewed the lease when it sent the PUT, so the PUT
        went out at least LEASE_SECONDS (over twice CONNECT_TIMEOUT) ago — or the holder had
        already looked for the account over that time and let the lease run out.
        """
        settled = []
        for stuck in await self.store.list_expired_leases():
            if stuck.id in self._in_flight:
                continue
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
                continue
            log.info("request %s: settling an interrupted approval", stuck.id)
            problem = _problem_of(stuck.last_error) or (
                "The bot stopped while creating this account"
            )
            async with self._holding(taken.id):
                settled.append(
                    await self._settle_unknown(taken, problem, delays=(0.0,), announce=False)
                )
        return settled
