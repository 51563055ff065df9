"""Plain data the workflow passes between its ports. No Slack or HTTP types."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.workflow.states import RequestState


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """Someone in the organisation's directory (Connect's remote search), with or without a
    Connect account; or, where the login provider has no directory search, a Connect account
    (no ticket: such accounts are made at first login)."""

    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    guid: str | None = None  # the Connect account's, when there is one
    user_role: str | None = None
    locked: bool = False  # the account is locked (it cannot log in)
    # A credential that creates this person's account: only ever passed to the directory again.
    temp_ticket: str = field(default="", repr=False)

    @property
    def has_account(self) -> bool:
        return bool(self.guid)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    """One answer to a directory search: the entries shown, and how many matched in all."""

    entries: tuple[DirectoryEntry, ...]
    total: int = 0


@dataclass(frozen=True, slots=True)
class Account:
    """A Connect account."""

    guid: str
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    user_role: str | None = None
    locked: bool = False
    # When the account was created, by Connect's clock; None when Connect did not say.
    created_time: datetime | None = None
    # When it was last active, by Connect's clock; None when never (or Connect did not say).
    active_time: datetime | None = None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class IdleAccounts:
    """Licensed accounts (unlocked, each taking a seat) nobody used for `idle_days`, oldest
    activity first: one page of them (`page` of `pages`, from 1), and how many there are."""

    accounts: tuple[Account, ...]
    total: int
    idle_days: int
    page: int = 1
    pages: int = 1


@dataclass(frozen=True, slots=True)
class DirectoryCapabilities:
    """What the organisation's login provider lets Connect do, as Connect itself says (None:
    Connect did not say). Decisions follow these flags, never the provider's name."""

    provider: str = "unknown"  # as Connect names it: "LDAP", "OAuth2", "SAML", …
    # People can be found in the directory, and their accounts created from it.
    remote_user_search: bool | None = None
    groups_enabled: bool | None = None
    remote_group_search: bool | None = None  # directory groups can be found and brought in
    provider_owns_group_members: bool | None = None  # membership comes from the provider
    provider_owns_roles: bool | None = None  # role_editable_by is "provider"
    licensed_users: int | None = None  # the licence's user limit; 0: no limit
    user_activity_days: int | None = None  # how long a user counts as active for the licence


@dataclass(frozen=True, slots=True)
class SeatCount:
    """Connect's licence seats, as Connect counts them: a seat is taken by an unlocked account
    active within the licence's activity window; locked and inactive accounts take none. Connect
    enforces the limit when someone logs in for the first time (or is unlocked), not when an
    account is created."""

    in_use: int
    limit: int | None  # the licence's user limit; 0: no limit; None: Connect did not say
    inactive: int = 0  # unlocked accounts not active within the window: no seat
    locked: int = 0  # locked accounts: no seat
    activity_days: int | None = None  # how long an account counts as active, when Connect says

    @property
    def full(self) -> bool:
        """No free seat: someone logging in for the first time would be refused."""
        return self.limit is not None and self.limit > 0 and self.in_use >= self.limit

    @property
    def free(self) -> int | None:
        """Free seats; None when there is no limit (or it is unknown)."""
        return max(0, self.limit - self.in_use) if self.limit else None


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A Connect group: its GUID and its name."""

    guid: str
    name: str


@dataclass(frozen=True, slots=True)
class DirectoryGroup:
    """A group of the organisation's directory (LDAP), as remote group search shows it: in
    Connect already (a `guid`) or not, with a ticket that brings it in. Names are not unique."""

    name: str
    guid: str | None = None
    temp_ticket: str = field(default="", repr=False)

    @property
    def in_connect(self) -> bool:
        return bool(self.guid)


@dataclass(frozen=True, slots=True)
class DirectoryGroupPage:
    groups: tuple[DirectoryGroup, ...]
    total: int = 0


@dataclass(frozen=True, slots=True)
class Person:
    """Someone from the directory, as the requester saw them in search results."""

    username: str
    full_name: str
    email: str
    temp_ticket: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """What a Slack profile says about who someone is, to find them in the directory."""

    email: str
    first_name: str = ""
    last_name: str = ""


class SubjectLink(StrEnum):
    """Whether the person a request is for was matched to a Slack account at filing."""

    LINKED = "linked"
    NO_EMAIL = "no_email"  # the directory shows no email (hidden, or none)
    NOT_FOUND = "not_found"  # nobody in the workspace has that email
    UNAVAILABLE = "unavailable"  # Slack did not answer


class RequestKind(StrEnum):
    """What a request asks for; its steps say how it is carried out."""

    NEW_ACCOUNT = "new_account"  # create the account from the directory (and set its role)
    ROLE_CHANGE = "role_change"  # give an existing account another role
    LOCK = "lock"  # lock an existing account (it cannot log in, keeps its content, takes no seat)
    UNLOCK = "unlock"  # unlock a locked account (it takes a seat again: Connect may refuse)
    NEW_GROUP = "new_group"  # bring a directory (LDAP) group into Connect; no person
    JOIN_GROUPS = "join_groups"  # add an existing account to Connect groups


class StepAction(StrEnum):
    CREATE_ACCOUNT = "create_account"  # PUT /v1/users {temp_ticket}
    SET_ROLE = "set_role"  # PUT /v1/users/{guid} {user_role}
    LOCK_ACCOUNT = "lock_account"  # POST /v1/users/{guid}/lock {locked: true}
    UNLOCK_ACCOUNT = "unlock_account"  # POST /v1/users/{guid}/lock {locked: false}
    CREATE_GROUP = "create_group"  # PUT /v1/groups {temp_ticket}
    ADD_TO_GROUP = "add_to_group"  # POST /v1/groups/{guid}/members {user_guid}; one per group


class StepStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # not needed in the end (the account was there before the request)


@dataclass(frozen=True, slots=True)
class Step:
    """One change a request makes in Connect, recorded on its own so that a crash or a failure
    between two steps never repeats a done one."""

    action: StepAction
    status: StepStatus = StepStatus.PENDING
    error: str | None = None  # why it failed, for the approver
    note: str | None = None  # what doing it found (e.g. Connect had given that role already)
    done_at: datetime | None = None
    # What the step acts on when a request has several of its kind (ADD_TO_GROUP: the group's
    # GUID; `target_name` its name, for people).
    target: str | None = None
    target_name: str | None = None

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "action": self.action.value,
            "status": self.status.value,
            "error": self.error,
            "note": self.note,
            "done_at": self.done_at.isoformat() if self.done_at else None,
        }
        if self.target is not None:
            record["target"] = self.target
            record["target_name"] = self.target_name
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Step:
        done_at = record.get("done_at")
        return cls(
            action=StepAction(record["action"]),
            status=StepStatus(record.get("status", StepStatus.PENDING)),
            error=record.get("error"),
            note=record.get("note"),
            done_at=datetime.fromisoformat(done_at) if done_at else None,
            target=record.get("target"),
            target_name=record.get("target_name"),
        )


# The requester of a request the bot filed itself (a person deactivated in Slack whose Connect
# account is still active). Slack user ids are letters and digits only, so no click, approver
# check or message to a person can ever mistake it for someone.
BOT_REQUESTER = "bot:slack-deactivation"


def filed_by_bot(requester_id: str) -> bool:
    """Whether nobody asked for the request: the bot filed it (there is no one to tell)."""
    return requester_id == BOT_REQUESTER


LOCK_KINDS = frozenset({RequestKind.LOCK, RequestKind.UNLOCK})
LOCK_STEPS = frozenset({StepAction.LOCK_ACCOUNT, StepAction.UNLOCK_ACCOUNT})


def steps_for(
    kind: RequestKind, role: str | None, *, groups: Sequence[GroupRef] = ()
) -> tuple[Step, ...]:
    """What carrying out a request of this kind takes: a new account with a role chosen is
    created first and given the role after (Connect's create call takes no role); the account
    is then added to each group asked for, one recorded step per group."""
    if kind is RequestKind.NEW_GROUP:
        return (Step(StepAction.CREATE_GROUP),)
    membership = tuple(
        Step(StepAction.ADD_TO_GROUP, target=group.guid, target_name=group.name) for group in groups
    )
    if kind is RequestKind.JOIN_GROUPS:
        return membership
    if kind is RequestKind.ROLE_CHANGE:
        return (Step(StepAction.SET_ROLE), *membership)
    if kind is RequestKind.LOCK:
        return (Step(StepAction.LOCK_ACCOUNT),)
    if kind is RequestKind.UNLOCK:
        return (Step(StepAction.UNLOCK_ACCOUNT),)
    create = Step(StepAction.CREATE_ACCOUNT)
    role_steps = (create,) if role is None else (create, Step(StepAction.SET_ROLE))
    return (*role_steps, *membership)


@dataclass(frozen=True, slots=True)
class Approval:
    """One approver's approval of a request, for the role they saw (None: Connect's default
    role), with the note they added."""

    approver_id: str
    role: str | None
    note: str | None = None
    approved_at: datetime | None = None
    round: int = 0  # the request's approval round it was given in (see approval_round)


@dataclass(frozen=True, slots=True)
class NewRequest:
    request_id: str
    requester_id: str
    person: Person
    justification: str
    created_at: datetime
    kind: RequestKind = RequestKind.NEW_ACCOUNT
    role_asked: str | None = None  # None: no choice was offered (Connect's default role)
    role_before: str | None = None  # a role change: the account's role at filing
    connect_guid: str | None = None  # a role change: the account it changes
    subject_id: str | None = None  # the Slack account of the person it is for, when linked
    subject_link: SubjectLink | None = None  # how linking them went (None: not attempted)
    batch_id: str | None = None  # filed with others: their batch, and its part (one card each)
    batch_part: int | None = None
    card_request_id: str | None = None  # the request holding the batch part's card (not itself)
    workflow_execution_id: str | None = None  # filed by a Workflow Builder step
    # A request about a directory group (NEW_GROUP): its name; the person is then empty and
    # the person's ticket is the group's.
    group_name: str | None = None
    # The Connect groups the account is to be added to (checked against Connect at filing).
    groups: tuple[GroupRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ProvisioningRequest:
    """A request as the store holds it: everything needed to finish it after a restart."""

    id: str
    state: RequestState
    requester_id: str
    username: str
    full_name: str
    email: str
    temp_ticket: str = field(repr=False)
    justification: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    deny_reason: str | None = None
    connect_guid: str | None = None
    last_error: str | None = None
    card_channel: str | None = None
    card_ts: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    last_reminder_at: datetime | None = None  # when approvers were last reminded of it
    put_sent_at: datetime | None = None  # when this approval's PUT went out (database clock)
    # The first PUT of the request whose answer never came (database clock), kept until it ends:
    # an account Connect created after it may be this request's.
    unknown_put_at: datetime | None = None
    outcome_note: str | None = None  # what settling an unclear answer from Connect found
    kind: RequestKind = RequestKind.NEW_ACCOUNT
    # The role the request asks for (None: Connect's default role, no choice was offered).
    role_asked: str | None = None
    # The role approved, set when an approver approves (may be lower than the one asked).
    role_granted: str | None = None
    # A role change: the account's role at filing; a new account: the role Connect gave it.
    role_before: str | None = None
    # An approver who raised the role asked for (a new question: approved by a later click).
    raised_by: str | None = None
    raised_from: str | None = None
    closed_by: str | None = None  # the approver who closed it incomplete
    # The Slack account of the person the request is for (matched by email at filing): they may
    # not decide it. `subject_link` says why there is none (None: filed before linking existed).
    subject_id: str | None = None
    subject_link: SubjectLink | None = None
    escalated_at: datetime | None = None  # when it was announced in the escalation channel
    steps: tuple[Step, ...] = ()
    # Every approval given, oldest first, for whichever role and round (bot.workflow.approvals).
    approvals: tuple[Approval, ...] = ()
    # Approvals of this round count; an approval undone (back to pending) starts the next.
    approval_round: int = 0
    # Filed with others: the batch and its part, which share one card; `card_request_id` is the
    # request that holds the part's card (None: this one, or a request filed alone).
    batch_id: str | None = None
    batch_part: int | None = None
    card_request_id: str | None = None
    # Filed by a Workflow Builder step: the execution to complete once the request is decided,
    # and how completing it went ("completed", "failed", "gone").
    workflow_execution_id: str | None = None
    workflow_result: str | None = None
    # A request about a directory group (NEW_GROUP): the group's name (there is no person).
    group_name: str | None = None
    # The Connect groups the account is to be added to, as they were when it was filed.
    groups: tuple[GroupRef, ...] = ()

    @property
    def card_holder(self) -> str:
        """The request whose card shows this one (itself unless it is in a batch)."""
        return self.card_request_id or self.id

    @property
    def about_group(self) -> bool:
        return self.kind is RequestKind.NEW_GROUP

    def step(self, action: StepAction) -> Step | None:
        return next((step for step in self.steps if step.action is action), None)

    @property
    def lock_step(self) -> Step | None:
        """The lock or unlock step of a lock or unlock request."""
        return next((step for step in self.steps if step.action in LOCK_STEPS), None)

    @property
    def failed_step(self) -> Step | None:
        return next((step for step in self.steps if step.status is StepStatus.FAILED), None)

    @property
    def membership_steps(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.action is StepAction.ADD_TO_GROUP)

    def with_target_step(self, target: str, **changes: Any) -> tuple[Step, ...]:
        """The steps with the one acting on `target` changed (a group's membership step)."""
        return tuple(
            dataclasses.replace(step, **changes) if step.target == target else step
            for step in self.steps
        )

    def with_step(self, action: StepAction, **changes: Any) -> tuple[Step, ...]:
        """The steps with one of them changed (for a store update)."""
        return tuple(
            dataclasses.replace(step, **changes) if step.action is action else step
            for step in self.steps
        )


class OutboxKind(StrEnum):
    """What the bot owes someone, delivered by the notifier after the state change commits."""

    POST_CARD = "post_card"  # the approval card, in the approver channel
    UPDATE_CARD = "update_card"  # re-render the card from the request's current state
    CONFIRM_REQUESTER = "confirm_requester"  # replace the requester's ephemeral results
    NOTIFY_REQUESTER = "notify_requester"  # DM the requester the outcome
    WELCOME = "welcome"  # DM the new account holder, when they are in the workspace
    REMIND_APPROVERS = "remind_approvers"  # nudge the approvers in the card's thread
    ESCALATE = "escalate"  # announce a request nobody decided in the escalation channel
    COMPLETE_WORKFLOW = "complete_workflow"  # end the Workflow Builder step that filed it


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message to owe, written in the same transaction as the state change."""

    kind: OutboxKind
    payload: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """An owed message as stored, claimed by one delivering worker at a time."""

    id: int
    request_id: str
    kind: OutboxKind
    payload: dict[str, Any] = field(repr=False)
    attempts: int = 0
    created_at: datetime | None = None
