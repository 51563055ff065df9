"""What the workflow's operations end in, for the caller (a Slack listener) to render.

Renderers match these exhaustively: a new refusal or problem added here and not rendered is a
type error, not a silent fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.workflow.models import (
    Account,
    DirectoryGroupPage,
    DirectoryPage,
    GroupRef,
    ProvisioningRequest,
)


class SearchProblem(StrEnum):
    TOO_MANY_RESULTS = "too_many_results"
    REMOTE_SEARCH_UNSUPPORTED = "remote_search_unsupported"
    CONNECT_UNAVAILABLE = "connect_unavailable"
    CONNECT_GARBAGE = "connect_garbage"
    CONFIGURATION = "configuration"
    PREFIX_TOO_SHORT = "prefix_too_short"  # an account search needs a longer prefix
    # Directory groups cannot be searched here: groups come from the login provider (or are off).
    NO_GROUP_SEARCH = "no_group_search"


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """Directory entries (without their tickets: those are read again at filing), or why not."""

    page: DirectoryPage | None = None
    problem: SearchProblem | None = None
    # The login provider has no directory search: the page holds existing Connect accounts only,
    # and new accounts are made when people first log in to Connect.
    accounts_only: bool = False
    # Connect manages roles (the login provider does not): accounts may be offered a role change.
    role_changes: bool = False
    # Connect manages group membership and the bot may add members: accounts may join groups.
    group_joins: bool = False


@dataclass(frozen=True, slots=True)
class GroupSearchOutcome:
    """Directory groups (without their tickets: read again at filing), or why not."""

    page: DirectoryGroupPage | None = None
    problem: SearchProblem | None = None


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    SELF_APPROVAL = "self_approval"
    SUBJECT = "subject"  # the request is for the clicker's own Connect access
    NOT_APPROVER = "not_approver"  # not a member of the approver channel
    NOT_IN_USERGROUP = "not_in_usergroup"  # not a member of the approver user group
    NOT_ADMIN_APPROVER = "not_admin_approver"  # may not decide requests granting Administrator
    GUEST = "guest"
    EXTERNAL = "external"  # from another organisation
    BOT = "bot"
    DEACTIVATED = "deactivated"
    UNSAFE_CHANNEL = "unsafe_channel"  # the approver channel is public
    ALREADY_DECIDED = "already_decided"
    CANNOT_CHECK = "cannot_check"
    NOT_REQUESTER = "not_requester"  # only the requester may cancel
    ROLE_NOT_REQUESTABLE = "role_not_requestable"  # a role outside REQUESTABLE_ROLES, or none
    NOTHING_TO_RETRY = "nothing_to_retry"  # no step failed (someone else retried already)
    ROLE_CHANGED = "role_changed"  # the request asks for another role than the approver saw
    ALREADY_APPROVED = "already_approved"  # this approver's approval counts already


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal
    request: ProvisioningRequest | None = None


@dataclass(frozen=True, slots=True)
class RoleRaised:
    """The approver chose a role above the one asked: that is a new question, not an approval.
    The request now asks for that role and waits, pending, for an approval of it."""

    request: ProvisioningRequest


@dataclass(frozen=True, slots=True)
class ApprovalCounted:
    """The approval was recorded, but the request needs more (APPROVALS_REQUIRED): it stays
    pending; `needed` approvals of `role` (the role this approval was for) in all."""

    request: ProvisioningRequest
    needed: int
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Decided:
    """The click won; `request` is the request as it ended up (approved, pending again, …)."""

    request: ProvisioningRequest


class FileProblem(StrEnum):
    EMPTY_JUSTIFICATION = "empty_justification"
    ALREADY_HAS_ACCOUNT = "already_has_account"
    NOT_IN_DIRECTORY = "not_in_directory"
    CANNOT_VERIFY = "cannot_verify"
    ROLE_NOT_REQUESTABLE = "role_not_requestable"  # a role outside REQUESTABLE_ROLES
    ROLES_NOT_MANAGED = "roles_not_managed"  # the bot cannot set roles here (provider, key)
    NO_ACCOUNT = "no_account"  # a role change for an account Connect does not have
    SAME_ROLE = "same_role"  # a role change to the role the account has
    LOCK_UNAVAILABLE = "lock_unavailable"  # the bot's key is not an administrator's
    ALREADY_LOCKED = "already_locked"  # a lock for an account that is locked
    NOT_LOCKED = "not_locked"  # an unlock for an account that is not locked
    GROUP_IN_CONNECT = "group_in_connect"  # the directory group is in Connect already
    GROUP_NOT_IN_DIRECTORY = "group_not_in_directory"  # no directory group of that name
    GROUP_NAME_AMBIGUOUS = "group_name_ambiguous"  # several directory groups share the name
    NO_GROUP_SEARCH = "no_group_search"  # groups come from the login provider here
    GROUPS_NOT_OFFERED = "groups_not_offered"  # the bot cannot add members here
    GROUP_NOT_FOUND = "group_not_found"  # a group chosen is not (any more) in Connect
    NO_GROUPS_CHOSEN = "no_groups_chosen"  # Join groups without a group
    TOO_MANY_GROUPS = "too_many_groups"  # more groups than one request may add
    GROUP_NAME_TAKEN = "group_name_taken"  # another Connect group has the directory group's name


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


class RoleFormProblem(StrEnum):
    """Why the role-change form cannot be offered for an account."""

    NO_ACCOUNT = "no_account"  # no account has this GUID (any more)
    ROLES_NOT_MANAGED = "roles_not_managed"  # the bot cannot set roles here (provider, key)
    NO_OTHER_ROLE = "no_other_role"  # no requestable role differs from the current one
    CANNOT_READ = "cannot_read"  # Connect did not give the account now (down, refused)


@dataclass(frozen=True, slots=True)
class RoleForm:
    """What the role-change form offers: the account as Connect has it now, and the roles that
    may be asked for (the requestable ones other than its current role), in rank order."""

    account: Account
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NoRoleForm:
    problem: RoleFormProblem
    account: Account | None = None


RoleFormOutcome = RoleForm | NoRoleForm


class GroupChoiceProblem(StrEnum):
    """Why a form offers no Connect groups to join."""

    GROUPS_OFF = "groups_off"  # Connect has groups switched off
    PROVIDER_OWNS_MEMBERS = "provider_owns_members"  # membership comes from the login provider
    KEY_NOT_ADMIN = "key_not_admin"  # adding members needs an administrator's key
    CANNOT_READ = "cannot_read"  # Connect did not say just now


@dataclass(frozen=True, slots=True)
class GroupChoice:
    """Whether a form offers Connect groups (`problem` None) or why not."""

    problem: GroupChoiceProblem | None = None

    @property
    def offered(self) -> bool:
        return self.problem is None


@dataclass(frozen=True, slots=True)
class JoinForm:
    """What the Join groups form is for: the account as Connect has it now."""

    account: Account


@dataclass(frozen=True, slots=True)
class NoJoinForm:
    """Why the Join groups form cannot be offered: the account (None: read, or not there), or
    the groups."""

    account_problem: RoleFormProblem | None = None
    groups_problem: GroupChoiceProblem | None = None


JoinFormOutcome = JoinForm | NoJoinForm


@dataclass(frozen=True, slots=True)
class GroupOptions:
    """Connect groups matching what the requester typed in a form's group select."""

    groups: tuple[GroupRef, ...] = ()


DecisionOutcome = Decided | Refused | RoleRaised | ApprovalCounted


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
    escalated: tuple[str, ...] = ()
