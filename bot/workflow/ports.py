"""What the workflow needs from the outside world: protocols, and the errors and values they
speak in.

The workflow depends on these, never on Slack, httpx, SQLAlchemy or Connect's own types; tests
hand it in-process fakes, production hands it the Connect directory adapter, the SQL store and the
Slack-backed approver check. Adapters translate their world's failures into the errors declared
here (Connect's error codes become `DirectoryRefused` with a `DirectoryProblem`, in one place:
`bot.connect.directory`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.workflow.models import (
    Account,
    DirectoryCapabilities,
    DirectoryEntry,
    DirectoryGroup,
    DirectoryGroupPage,
    DirectoryPage,
    GroupRef,
    NewRequest,
    OutboxItem,
    OutboxMessage,
    ProvisioningRequest,
    SeatCount,
    SlackIdentity,
)
from bot.workflow.states import RequestState


class DuplicateRequestError(Exception):
    """Another active (pending or provisioning) request exists for the same username."""

    def __init__(self, existing: ProvisioningRequest) -> None:
        super().__init__(f"request {existing.id} is already {existing.state} for this username")
        self.existing = existing


@dataclass(frozen=True, slots=True)
class ApprovalRecorded:
    """What recording an approval did: `counted` (a new approval: not this approver's repeat
    click), `reached` (it was the last one needed: the request moved to provisioning, and this
    caller carries it out)."""

    request: ProvisioningRequest
    counted: bool
    reached: bool


class ApproverCheckUnavailable(Exception):
    """Who may approve cannot be determined right now (Slack down, bot not in the channel)."""


class RequestStore(Protocol):
    async def ping(self) -> None:
        """Raise if the database cannot be reached."""

    async def create(
        self, new: NewRequest, *, outbox: Sequence[OutboxItem] = ()
    ) -> ProvisioningRequest:
        """Insert a pending request and its owed messages in one transaction.

        Raises DuplicateRequestError when the username already has an active request (enforced by
        the database, so two replicas racing cannot both insert).
        """

    async def create_batch(
        self, news: Sequence[NewRequest], *, outbox: Mapping[str, Sequence[OutboxItem]]
    ) -> list[ProvisioningRequest]:
        """Insert requests filed together, and their owed messages (by request id), in one
        transaction. Raises DuplicateRequestError when one username has an active request."""

    async def list_batch(self, batch_id: str, part: int | None) -> list[ProvisioningRequest]:
        """The requests of a batch's part (all parts: None), in filing order."""

    async def set_batch_card(self, batch_id: str, part: int, channel: str, ts: str) -> None:
        """Record the card of a batch's part on each of its requests."""

    async def get(self, request_id: str) -> ProvisioningRequest | None: ...

    async def find_active(self, username: str) -> ProvisioningRequest | None: ...

    async def find_by_workflow(self, execution_id: str) -> ProvisioningRequest | None:
        """The request a Workflow Builder step's execution filed, if any."""

    async def find_active_group(self, name: str) -> ProvisioningRequest | None:
        """The active request to bring in the directory group `name`, if any."""

    async def transition(
        self,
        request_id: str,
        *,
        from_states: Collection[RequestState],
        to_state: RequestState,
        now: datetime,
        changes: Mapping[str, Any] | None = None,
        outbox: Sequence[OutboxItem] = (),
        lease_owner: str | None = None,
        lease_seconds: float | None = None,
        lease_expired: bool = False,
        expect: Mapping[str, Any] | None = None,
    ) -> ProvisioningRequest | None:
        """One conditional UPDATE: move the request if it is in one of `from_states`.

        Optional guards: `lease_owner` (the row's lease must belong to this owner) and
        `lease_expired` (the row's lease has run out by the database's clock), and `expect`
        (columns that must still hold these values, e.g. the role the approver saw). `lease_seconds`
        sets the lease's expiry to the database's clock plus that many seconds.
        Returns the updated request, or None when the guard failed (someone else won). The owed
        messages are inserted in the same transaction, only when the update won.
        """

    async def record_approval(
        self,
        request_id: str,
        *,
        approver_id: str,
        role: str | None,
        note: str | None,
        now: datetime,
        expect_role: str | None,
        needed: int,
        on_reached: Mapping[str, Any],
        lease_seconds: float,
        outbox: Sequence[OutboxItem] = (),
    ) -> ApprovalRecorded | None:
        """Record `approver_id`'s approval of the pending request for `role` (once per approver
        and role), provided it still asks for `expect_role`; when that makes `needed` distinct
        approvals of `role`, move it to provisioning with `on_reached` and a lease of
        `lease_seconds` (database clock), all in one transaction, so exactly one approval is the
        last. `outbox` is written when the approval counted or reached the count (the card
        changes). None when the request is no longer pending or asks for another role."""

    async def set_card(self, request_id: str, channel: str, ts: str) -> None: ...

    async def set_workflow_result(self, request_id: str, result: str) -> None:
        """Record how completing the request's Workflow Builder step went."""

    async def list_expired_leases(self, now: datetime | None = None) -> list[ProvisioningRequest]:
        """Provisioning requests whose lease ran out before `now` (default: the database's
        clock, which every replica shares)."""

    async def renew_lease(self, request_id: str, *, owner: str, lease_seconds: float) -> bool:
        """Extend a live lease held by `owner` to the database's clock plus `lease_seconds`;
        False when the lease is not (or no longer) live and theirs."""

    async def mark_put_sent(
        self, request_id: str, *, owner: str, lease_seconds: float, now: datetime
    ) -> ProvisioningRequest | None:
        """Record, by the database's clock, that the PUT is being sent (unless an earlier PUT
        of the request is recorded already), and renew the lease; only for the holder of a live
        lease (None otherwise: the PUT must not be sent)."""

    async def list_requests(
        self,
        *,
        states: Collection[RequestState] | None = None,
        requester_id: str | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        limit: int = 50,
        not_escalated: bool = False,
        subject_id: str | None = None,
    ) -> list[ProvisioningRequest]:
        """Requests matching every filter given (created_before is inclusive; `not_escalated`:
        never announced in the escalation channel; `subject_id`: for that Slack account),
        oldest first unless `newest_first`, at most `limit`."""

    async def count_requests(
        self,
        *,
        states: Collection[RequestState] | None = None,
        requester_id: str | None = None,
        created_before: datetime | None = None,
    ) -> int:
        """How many requests `list_requests` with the same filters would find without a limit."""

    async def list_reminders_due(
        self, *, due_before: datetime, limit: int = 100
    ) -> list[ProvisioningRequest]:
        """Pending requests with a posted card whose last reminder (or, before the first one,
        whose filing) is at or before `due_before`, oldest first."""

    async def claim_reminder(
        self,
        request_id: str,
        *,
        now: datetime,
        due_before: datetime,
        outbox: Sequence[OutboxItem] = (),
    ) -> ProvisioningRequest | None:
        """One conditional UPDATE: if the request is still due (as `list_reminders_due` defines
        it), set its last_reminder_at to `now` and insert the owed messages in the same
        transaction. None when it is not due any more (another replica claimed it, or it was
        decided)."""

    async def claim_outbox(
        self, *, owner: str, now: datetime, lease_seconds: float, limit: int = 20
    ) -> list[OutboxMessage]:
        """Claim undelivered messages whose time has come (by `now`) and whose request has no
        earlier undelivered message (so a card is posted before the confirmation that links to
        it), under a lease of `lease_seconds` by the database's clock."""

    async def renew_outbox_lease(
        self, message_id: int, *, owner: str, lease_seconds: float
    ) -> bool:
        """Extend the delivery lease `owner` holds on an undelivered message (database clock);
        False when it is no longer theirs."""

    async def outbox_delivered(self, message_id: int, *, now: datetime) -> None: ...

    async def absorb_later(self, message_id: int, *, now: datetime) -> int:
        """Mark delivered the later undelivered messages of `message_id`'s request and kind
        (its delivery answers them too); returns how many."""

    async def outbox_retry_later(
        self, message_id: int, *, next_attempt_at: datetime, error: str
    ) -> None: ...

    async def outbox_give_up(self, message_id: int, *, now: datetime, error: str) -> None: ...

    async def outbox_pending_count(self) -> int: ...


class DirectoryError(Exception):
    """The directory (Connect) did not do what was asked.

    `problem` says what happened as the start of a sentence an approver reads ("Connect did not
    answer in time"); it never holds a key, a ticket or a URL.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class DirectoryUnavailable(DirectoryError):
    """No answer, or a failure on the directory's side (timeout, connection, 5xx, rate limit).

    After a change (creating an account) the outcome is unknown: it may have happened."""


class DirectoryUnreadable(DirectoryError):
    """An answer the bot cannot read. After a change the outcome is unknown, as above."""


class DirectoryProblem(StrEnum):
    """Why the directory refused, in the terms the workflow acts on."""

    USERNAME_TAKEN = "username_taken"  # the account exists already (perhaps just created)
    USERNAME_REFUSED = "username_refused"  # Connect does not permit (or policy prohibits) it
    STALE_TICKET = "stale_ticket"  # the person's ticket is no longer accepted: search again
    TOO_MANY_RESULTS = "too_many_results"  # the search was too broad
    PROVIDER_CANNOT = "provider_cannot"  # the login provider cannot do this (no remote search)
    NOT_PERMITTED = "not_permitted"  # the bot's key is refused or lacks a permission
    LOCKED = "locked"  # the account is locked
    LICENCE_FULL = "licence_full"  # no free licence seat
    GROUP_EXISTS = "group_exists"  # the group is in Connect already (same unique ID or name)
    ALREADY_MEMBER = "already_member"  # the account is in the group already
    OTHER = "other"


class DirectoryRefused(DirectoryError):
    """A definite refusal: nothing was changed.

    `explanation` is a whole sentence for the approver: what happened and who must act."""

    def __init__(
        self, kind: DirectoryProblem, problem: str, explanation: str, *, code: int | None = None
    ) -> None:
        super().__init__(problem)
        self.kind = kind
        self.explanation = explanation
        self.code = code


class Directory(Protocol):
    """The organisation's directory and its Connect accounts, as the workflow needs them.

    Every method raises only DirectoryError and its subclasses."""

    async def search(self, prefix: str, *, limit: int) -> DirectoryPage:
        """Directory entries matching a prefix of a username, first or last name."""

    async def find_entry(self, username: str) -> DirectoryEntry | None:
        """The directory entry whose username is exactly `username`, with a fresh ticket."""

    async def create_account(self, temp_ticket: str) -> Account:
        """Create the account a ticket stands for. Never retried: on DirectoryUnavailable or
        DirectoryUnreadable the outcome is unknown."""

    async def find_account(self, username: str) -> Account | None:
        """The Connect account whose username is exactly `username`."""

    async def search_accounts(self, prefix: str, *, limit: int) -> DirectoryPage:
        """Existing Connect accounts matching a prefix of a username, first or last name (for
        login providers without directory search); the entries carry no ticket."""

    async def capabilities(self) -> DirectoryCapabilities:
        """What the login provider lets Connect do, as Connect says (read once, then kept)."""

    async def key_role(self) -> str | None:
        """The role of the user whose key the bot holds (read once, then kept); None when
        Connect did not say."""

    async def get_account(self, guid: str) -> Account | None:
        """The Connect account `guid`, None when there is none."""

    async def set_role(self, guid: str, role: str) -> Account:
        """Give the account `guid` the role `role`. Never retried: on DirectoryUnavailable or
        DirectoryUnreadable the outcome is unknown (look at the account)."""

    async def set_locked(self, guid: str, locked: bool) -> None:
        """Lock (or unlock) the account `guid`: an administrator's key only; unlocking takes a
        seat, so a full licence refuses it (`DirectoryProblem.LICENCE_FULL`). Never retried: on
        DirectoryUnavailable or DirectoryUnreadable the outcome is unknown (read `locked`)."""


class GroupDirectory(Protocol):
    """Connect's groups and the directory's, as the workflow needs them (capabilities and the
    key's role come from `Directory`). Every method raises only DirectoryError and its
    subclasses."""

    async def search_directory_groups(self, prefix: str, *, limit: int) -> DirectoryGroupPage:
        """Directory (LDAP) groups whose name starts with `prefix`, each with a ticket."""

    async def find_directory_groups(self, name: str) -> tuple[DirectoryGroup, ...]:
        """Every directory group named exactly `name` (names are not unique), with fresh
        tickets."""

    async def create_group(self, temp_ticket: str) -> GroupRef:
        """Bring in the directory group a ticket stands for. Never retried: on
        DirectoryUnavailable or DirectoryUnreadable the outcome is unknown (look it up)."""

    async def find_group(self, name: str) -> GroupRef | None:
        """The Connect group named exactly `name`."""

    async def get_group(self, guid: str) -> GroupRef | None:
        """The Connect group `guid`, None when there is none."""

    async def list_groups(self, prefix: str, *, limit: int) -> tuple[GroupRef, ...]:
        """Connect groups whose name starts with `prefix` ("" for any)."""

    async def add_member(self, group_guid: str, user_guid: str) -> bool:
        """Add the account to the group: True when added, False when it was a member already
        (done either way). Safe to repeat after an unknown outcome for that reason."""


class Seats(Protocol):
    """Connect's licence seats, for the approvers (the card, `/connect-user seats`)."""

    async def seats(self) -> SeatCount:
        """Seats in use, the limit, inactive and locked accounts.

        Raises DirectoryRefused with `DirectoryProblem.NOT_PERMITTED` when the bot's key may not
        read them (only an administrator's may), other DirectoryErrors when Connect cannot
        answer."""

    async def idle_accounts(self, *, idle_since: datetime) -> list[Account]:
        """Licensed accounts (unlocked, each taking a seat) not active since `idle_since` (or
        never), oldest activity first. Raises as `seats` does."""


class ApproverVerdict(StrEnum):
    """Whether someone may decide requests, and if not, why (each reason is told to them)."""

    APPROVER = "approver"
    NOT_MEMBER = "not_member"  # not in the approver channel
    NOT_IN_USERGROUP = "not_in_usergroup"  # not in SLACK_APPROVER_USERGROUP
    NOT_ADMIN_APPROVER = "not_admin_approver"  # grants Administrator: not in the admin group
    GUEST = "guest"  # a multi- or single-channel guest
    EXTERNAL = "external"  # from another organisation (Slack Connect)
    BOT = "bot"  # a bot or an app user
    DEACTIVATED = "deactivated"
    # The approver channel is public (anyone could join it) and that was not declared intended:
    # nobody decides until it is fixed.
    UNSAFE_CHANNEL = "unsafe_channel"


class PersonLookupUnavailable(Exception):
    """Slack could not say who has an email address right now."""


class PeopleLookup(Protocol):
    async def person_id(self, email: str) -> str | None:
        """The workspace member whose email is `email` (None: nobody, or a bot or deactivated
        account). Raises PersonLookupUnavailable when Slack cannot say."""

    async def identity(self, user_id: str) -> SlackIdentity | None:
        """The email and name on `user_id`'s Slack profile, read now (None: the profile shows
        no email). Raises PersonLookupUnavailable when Slack cannot say."""


class ApproverPolicy(Protocol):
    async def approver_verdict(self, user_id: str, *, grants: str | None = None) -> ApproverVerdict:
        """Who may decide (a request that grants the role `grants`, when given), from answers
        of bounded age.

        Raises ApproverCheckUnavailable when the answer cannot be known: never guess."""


class Metrics(Protocol):
    """What the bot counts for its operators (served as Prometheus metrics when enabled).

    Every argument is a bounded name (a kind, an outcome, an endpoint template, a Slack method),
    never a person's data: no username, prefix, email, GUID or id. Each call only increments a
    counter or observes a value, so the hot paths stay cheap."""

    def request_filed(self, kind: str) -> None:
        """A request was filed (stored, its card owed)."""

    def request_decided(self, kind: str, outcome: str, seconds: float | None) -> None:
        """A pending request was decided (`approved`, `denied`, `cancelled`, `expired`),
        `seconds` after it was filed (None when the filing time is unknown)."""

    def request_finished(self, kind: str, outcome: str) -> None:
        """Carrying out an approval ended (`approved`, `already_exists`, `incomplete`,
        `returned_to_pending`)."""

    def lease_recovered(self) -> None:
        """An approval whose holder stopped was taken over by this process."""

    def connect_call(
        self, method: str, endpoint: str, outcome: str, code: str, seconds: float
    ) -> None:
        """One HTTP attempt to Connect: `endpoint` is the path template (`/v1/users/{guid}`),
        `outcome` the status (`200`, `404`) or why there is none (`timeout`, `connection`),
        `code` Connect's error code ("" when none)."""

    def slack_error(self, method: str, error: str) -> None:
        """A Slack Web API call answered an error (`ok: false`, or no answer)."""

    def slack_rate_limited(self, method: str) -> None:
        """A Slack Web API call answered 429."""

    def cache_lookup(self, cache: str, result: str) -> None:
        """A shared-cache read: `hit`, `miss`, or `shared` (joined a look-up in flight)."""

    def outbox_given_up(self, kind: str) -> None:
        """An owed message of this kind (an OutboxKind value) will never be delivered: Slack
        refused it for good, or it failed every attempt."""


class NoMetrics:
    """Counts nothing: the default, and what runs with METRICS_ENABLED off."""

    def request_filed(self, kind: str) -> None:
        pass

    def request_decided(self, kind: str, outcome: str, seconds: float | None) -> None:
        pass

    def request_finished(self, kind: str, outcome: str) -> None:
        pass

    def lease_recovered(self) -> None:
        pass

    def connect_call(
        self, method: str, endpoint: str, outcome: str, code: str, seconds: float
    ) -> None:
        pass

    def slack_error(self, method: str, error: str) -> None:
        pass

    def slack_rate_limited(self, method: str) -> None:
        pass

    def cache_lookup(self, cache: str, result: str) -> None:
        pass

    def outbox_given_up(self, kind: str) -> None:
        pass


NO_METRICS = NoMetrics()
