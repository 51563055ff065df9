"""Filing and deciding requests, and the lists people ask for.

Every state change is one conditional update in the store, and the messages it owes people are
written in the same transaction (the outbox), so two clicks, two replicas or a crash can never
decide a request twice or forget to tell someone. Who may decide is asked of the approver policy
at click time, every time.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable, Sequence

from bot.workflow.approvals import ApprovalsRequired
from bot.workflow.approvers import approver_refusal
from bot.workflow.clock import Clock, utcnow
from bot.workflow.finding import FindProblem, OwnEntry, queries_for, same_email, shortlist
from bot.workflow.models import (
    LOCK_KINDS,
    Account,
    DirectoryCapabilities,
    DirectoryEntry,
    DirectoryGroupPage,
    DirectoryPage,
    GroupRef,
    NewRequest,
    OutboxItem,
    OutboxKind,
    Person,
    ProvisioningRequest,
    RequestKind,
    StepAction,
    SubjectLink,
)
from bot.workflow.outcomes import (
    ApprovalCounted,
    Decided,
    DecisionOutcome,
    Duplicate,
    Filed,
    FileOutcome,
    FileProblem,
    GroupChoice,
    GroupChoiceProblem,
    GroupSearchOutcome,
    HomeContent,
    JoinForm,
    JoinFormOutcome,
    NoJoinForm,
    NoRoleForm,
    NotFiled,
    Refusal,
    Refused,
    RequestList,
    RoleForm,
    RoleFormOutcome,
    RoleFormProblem,
    RoleRaised,
    SearchOutcome,
    SearchProblem,
)
from bot.workflow.ports import (
    NO_METRICS,
    ApproverPolicy,
    Directory,
    DirectoryError,
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
    DuplicateRequestError,
    GroupDirectory,
    Metrics,
    PeopleLookup,
    PersonLookupUnavailable,
    RequestStore,
)
from bot.workflow.provisioning import Provisioner
from bot.workflow.roles import ROLES, outranks, role_label
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)

MAX_JUSTIFICATION = 1000
# The shortest prefix an account search (servers without remote search) accepts.
MIN_ACCOUNT_PREFIX = 3
MAX_DENY_REASON = 500
MAX_APPROVAL_NOTE = 500
# How many Connect groups one request may add an account to (each is a step of its own).
MAX_GROUPS = 10
# How many groups a form's group select offers at once (Slack shows at most 100 options).
MAX_GROUP_OPTIONS = 100

# A search refused by the directory, as the searcher is told.
_SEARCH_REFUSALS = {
    DirectoryProblem.TOO_MANY_RESULTS: SearchProblem.TOO_MANY_RESULTS,
    DirectoryProblem.PROVIDER_CANNOT: SearchProblem.REMOTE_SEARCH_UNSUPPORTED,
    DirectoryProblem.NOT_PERMITTED: SearchProblem.CONFIGURATION,
}


# Why a role change cannot be filed, when the form could not be offered either.
_FORM_PROBLEMS = {
    RoleFormProblem.CANNOT_READ: FileProblem.CANNOT_VERIFY,
    RoleFormProblem.NO_ACCOUNT: FileProblem.NO_ACCOUNT,
    RoleFormProblem.ROLES_NOT_MANAGED: FileProblem.ROLES_NOT_MANAGED,
    RoleFormProblem.NO_OTHER_ROLE: FileProblem.ROLE_NOT_REQUESTABLE,
}


def new_request_id() -> str:
    return secrets.token_hex(8)


class Requests:
    def __init__(
        self,
        *,
        store: RequestStore,
        directory: Directory,
        approvers: ApproverPolicy,
        provisioner: Provisioner,
        people: PeopleLookup | None = None,
        groups: GroupDirectory | None = None,
        search_limit: int = 50,
        requestable_roles: tuple[str, ...] = ("viewer", "publisher"),
        approvals_required: ApprovalsRequired | None = None,
        clock: Clock = utcnow,
        id_factory: Callable[[], str] = new_request_id,
        on_outbox: Callable[[], None] | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.store = store
        self.directory = directory
        self.approvers = approvers
        self.metrics = metrics
        self.provisioner = provisioner
        self.people = people
        self.groups = groups
        self.search_limit = search_limit
        self.requestable_roles = tuple(role for role in ROLES if role in requestable_roles)
        self.approvals_required = approvals_required or ApprovalsRequired()
        self.clock = clock
        self.id_factory = id_factory
        self._on_outbox = on_outbox or (lambda: None)

    def notify_outbox(self) -> None:
        """Messages were written to the outbox: have them delivered now."""
        self._on_outbox()

    # -- search --------------------------------------------------------------------------------

    async def search(self, prefix: str) -> SearchOutcome:
        """Directory entries for a prefix, without their tickets: nothing needs them before a
        request is filed, and filing reads a fresh one.

        When Connect says its login provider has no remote search, nothing is asked of the
        directory: existing Connect accounts are searched instead (new ones are made at first
        login there). Accounts are offered role changes where the bot can set roles
        (`roles_offered`)."""
        try:
            caps: DirectoryCapabilities | None = await self.directory.capabilities()
        except DirectoryError:
            caps = None  # unknown: try, and let the answer say
        if caps is not None and caps.remote_user_search is False:
            return await self._search_accounts(prefix)
        try:
            page = await self.directory.search(prefix, limit=self.search_limit)
        except DirectoryRefused as exc:
            if exc.kind is DirectoryProblem.PROVIDER_CANNOT:
                # Connect did not say beforehand (an older server), but it has no remote search.
                log.info("remote search unsupported by the login provider: searching accounts")
                return await self._search_accounts(prefix)
            return SearchOutcome(problem=_search_problem(exc, "remote search"))
        except DirectoryError as exc:
            return SearchOutcome(problem=_search_problem(exc, "remote search"))
        return await self._found(page, accounts_only=False)

    async def _search_accounts(self, prefix: str) -> SearchOutcome:
        # Connect lists its accounts for any prefix, with no "too many results" of its own: a
        # letter or two would hand a searcher the whole staff list with emails and roles.
        if len(prefix.strip()) < MIN_ACCOUNT_PREFIX:
            return SearchOutcome(problem=SearchProblem.PREFIX_TOO_SHORT, accounts_only=True)
        try:
            page = await self.directory.search_accounts(prefix, limit=self.search_limit)
        except DirectoryError as exc:
            return SearchOutcome(problem=_search_problem(exc, "account search"))
        return await self._found(page, accounts_only=True)

    async def _found(self, page: DirectoryPage, *, accounts_only: bool) -> SearchOutcome:
        # Whether roles can be changed is only worth asking when some account was found.
        role_changes = any(entry.has_account for entry in page.entries) and bool(
            await self.roles_offered()
        )
        group_joins = (
            self.groups is not None
            and any(entry.has_account for entry in page.entries)
            and (await self.group_choice()).offered
        )
        return SearchOutcome(
            page=_without_tickets(page),
            accounts_only=accounts_only,
            role_changes=role_changes,
            group_joins=group_joins,
        )

    # -- a person's own entry --------------------------------------------------------------------

    async def own_entry(self, user_id: str) -> OwnEntry:
        """The directory entry of the person `user_id` is, found by the email on their Slack
        profile: the entries their email's local part and their names find, kept only when the
        entry's email equals the Slack email. Where the login provider has no directory search,
        their Connect account is looked for the same way."""
        if self.people is None:
            return OwnEntry(problem=FindProblem.SLACK_UNAVAILABLE)
        try:
            identity = await self.people.identity(user_id)
        except PersonLookupUnavailable:
            log.warning("could not read a requester's Slack profile to find their own entry")
            return OwnEntry(problem=FindProblem.SLACK_UNAVAILABLE)
        if identity is None:
            return OwnEntry(problem=FindProblem.NO_EMAIL)
        queries = queries_for(identity)
        try:
            caps: DirectoryCapabilities | None = await self.directory.capabilities()
        except DirectoryError:
            caps = None
        accounts_only = caps is not None and caps.remote_user_search is False
        try:
            try:
                entries = await self._shortlist(queries, accounts=accounts_only)
            except DirectoryRefused as exc:
                if exc.kind is not DirectoryProblem.PROVIDER_CANNOT or accounts_only:
                    raise
                accounts_only = True  # an older server that did not say so beforehand
                entries = await self._shortlist(queries, accounts=True)
        except DirectoryError as exc:
            log.warning("could not look for a requester's own entry: %s", exc.problem)
            return OwnEntry(problem=FindProblem.CONNECT_UNAVAILABLE, email=identity.email)
        mine = [entry for entry in entries if same_email(entry.email, identity.email)]
        if len(mine) > 1:
            return OwnEntry(problem=FindProblem.SEVERAL, email=identity.email)
        if not mine:
            problem = FindProblem.NO_DIRECTORY if accounts_only else FindProblem.NOT_FOUND
            return OwnEntry(problem=problem, email=identity.email)
        return OwnEntry(entry=mine[0], email=identity.email)

    async def _shortlist(self, queries: tuple[str, ...], *, accounts: bool) -> list[DirectoryEntry]:
        if accounts:  # an account search refuses short prefixes (see _search_accounts)
            queries = tuple(q for q in queries if len(q) >= MIN_ACCOUNT_PREFIX)
        return await shortlist(self.directory, queries, limit=self.search_limit, accounts=accounts)

    # -- roles ---------------------------------------------------------------------------------

    async def roles_offered(self) -> tuple[str, ...]:
        """The roles a request may ask for: REQUESTABLE_ROLES when Connect manages roles and the
        bot's key is an administrator's (only such a key can set one); none otherwise, and the
        account gets Connect's default role. Unknown counts as none here (a form offers no
        choice the bot may not be able to carry out); filing tells the two apart."""
        return await self._role_choice() or ()

    async def _role_choice(self) -> tuple[str, ...] | None:
        """As `roles_offered`, but None when Connect cannot say right now."""
        try:
            caps = await self.directory.capabilities()
            if caps.provider_owns_roles is not False:
                return ()
            if await self.directory.key_role() != "administrator":
                return ()
        except DirectoryError as exc:
            log.warning("cannot tell whether roles can be set: %s", exc.problem)
            return None
        return self.requestable_roles

    # -- request -------------------------------------------------------------------------------

    async def file_request(
        self,
        *,
        requester_id: str,
        username: str,
        justification: str,
        role: str | None = None,
        response_url: str | None = None,
        group_guids: Sequence[str] = (),
    ) -> FileOutcome:
        """File a request for the directory entry `username` (and the Connect groups
        `group_guids` to add the account to, checked against Connect now).

        The username comes back from the requester's client (a button), so nothing else is
        taken from there: the ticket and the identity the approvers see are read from the
        directory now. Were the button trusted, it could pair one person's name with another's
        ticket."""
        checked = await self.checked_form(justification, role)
        if isinstance(checked, NotFiled):
            return checked
        justification, role = checked
        new = await self.prepare_new_account(
            requester_id, username, justification, role, group_guids=group_guids
        )
        if not isinstance(new, NewRequest):
            return new
        outbox = _filed_outbox(response_url)
        return await self._create(new, outbox)

    async def checked_form(
        self, justification: str, role: str | None
    ) -> tuple[str, str | None] | NotFiled:
        """A new-account form's justification and role, as filing takes them: the role comes
        back from the requester's client, so only an offered one is taken (none chosen: the
        first offered)."""
        justification = justification.strip()[:MAX_JUSTIFICATION]
        if not justification:
            return NotFiled(FileProblem.EMPTY_JUSTIFICATION)
        offered = await self._role_choice()
        if offered is None:  # a role asked for, or none, cannot be checked right now
            return NotFiled(FileProblem.CANNOT_VERIFY)
        if role is not None and role not in offered:
            return NotFiled(FileProblem.ROLE_NOT_REQUESTABLE)
        if role is None and offered:
            role = offered[0]  # the form preselects the first; a missing choice is that one
        return justification, role

    async def prepare_new_account(
        self,
        requester_id: str,
        username: str,
        justification: str,
        role: str | None,
        *,
        group_guids: Sequence[str] = (),
    ) -> NewRequest | Duplicate | NotFiled:
        """The request for the directory entry `username` (and the Connect groups `group_guids`,
        checked against Connect now), read from the directory now (its ticket and who the
        approvers see), or why there is none; not stored yet."""
        existing = await self.store.find_active(username)
        if existing is not None:
            return Duplicate(existing)
        try:
            fresh = await self.directory.find_entry(username)
        except DirectoryError as exc:
            log.warning("could not confirm the person in the directory: %s", exc.problem)
            return NotFiled(FileProblem.CANNOT_VERIFY)
        if fresh is None or not fresh.temp_ticket:
            return NotFiled(FileProblem.NOT_IN_DIRECTORY)
        if fresh.has_account:
            return NotFiled(FileProblem.ALREADY_HAS_ACCOUNT, guid=fresh.guid)
        chosen = await self._chosen_groups(group_guids)
        if isinstance(chosen, FileProblem):
            return NotFiled(chosen)
        person = Person(
            username=fresh.username,
            full_name=fresh.full_name,
            email=fresh.email,
            temp_ticket=fresh.temp_ticket,
        )
        return NewRequest(
            request_id=self.id_factory(),
            requester_id=requester_id,
            person=person,
            justification=justification,
            created_at=self.clock(),
            role_asked=role,
            groups=chosen,
        )

    async def file_role_change(
        self,
        *,
        requester_id: str,
        guid: str,
        role: str,
        justification: str,
        response_url: str | None = None,
        group_guids: Sequence[str] = (),
    ) -> FileOutcome:
        """File a request to give the existing account `guid` the role `role` (and add it to
        the Connect groups `group_guids`, checked against Connect now).

        Both come back from the requester's client, so the account is read from Connect now
        (who the approvers see, and the role it has) and the role must be one offered."""
        justification = justification.strip()[:MAX_JUSTIFICATION]
        if not justification:
            return NotFiled(FileProblem.EMPTY_JUSTIFICATION)
        # The same reading of the account and of the roles the bot may set as the form's.
        form = await self.role_form(guid)
        if isinstance(form, NoRoleForm) and form.account is None:
            return NotFiled(_FORM_PROBLEMS[form.problem])
        account = form.account
        assert account is not None
        if role == account.user_role:
            return NotFiled(FileProblem.SAME_ROLE, guid=guid)
        if isinstance(form, NoRoleForm) or role not in form.roles:
            return NotFiled(FileProblem.ROLE_NOT_REQUESTABLE)
        return await self._file_for_account(
            requester_id,
            account,
            justification,
            RequestKind.ROLE_CHANGE,
            response_url=response_url,
            group_guids=group_guids,
            role_asked=role,
        )

    # -- lock and unlock -------------------------------------------------------------------------

    async def locking_available(self) -> bool | None:
        """Whether the bot may lock and unlock accounts: only an administrator's key may (None
        when Connect cannot say right now)."""
        try:
            return await self.directory.key_role() == "administrator"
        except DirectoryError as exc:
            log.warning("cannot tell whether accounts can be locked: %s", exc.problem)
            return None

    async def file_lock(
        self,
        *,
        requester_id: str,
        lock: bool,
        justification: str,
        username: str | None = None,
        guid: str | None = None,
        response_url: str | None = None,
    ) -> FileOutcome:
        """File a request to lock (or unlock) the existing account named exactly by `username`
        (typed) or `guid` (a button's): both come from the requester's client, so the account
        is read from Connect now. An account already as asked is no request."""
        justification = justification.strip()[:MAX_JUSTIFICATION]
        if not justification:
            return NotFiled(FileProblem.EMPTY_JUSTIFICATION)
        available = await self.locking_available()
        if available is None:
            return NotFiled(FileProblem.CANNOT_VERIFY)
        if not available:
            return NotFiled(FileProblem.LOCK_UNAVAILABLE)
        try:
            if guid is not None:
                account = await self.directory.get_account(guid)
            else:
                account = await self.directory.find_account(username or "")
        except DirectoryError as exc:
            log.warning("could not read the account to lock or unlock: %s", exc.problem)
            return NotFiled(FileProblem.CANNOT_VERIFY)
        if account is None:
            return NotFiled(FileProblem.NO_ACCOUNT)
        if account.locked is lock:
            problem = FileProblem.ALREADY_LOCKED if lock else FileProblem.NOT_LOCKED
            return NotFiled(problem, guid=account.guid)
        kind = RequestKind.LOCK if lock else RequestKind.UNLOCK
        return await self._file_for_account(
            requester_id, account, justification, kind, response_url=response_url
        )

    async def _file_for_account(
        self,
        requester_id: str,
        account: Account,
        justification: str,
        kind: RequestKind,
        *,
        response_url: str | None,
        group_guids: Sequence[str] = (),
        role_asked: str | None = None,
    ) -> FileOutcome:
        """File a request of `kind` about the existing `account` (read from Connect by the
        caller): one active request per account, the groups chosen checked against Connect."""
        existing = await self.store.find_active(account.username)
        if existing is not None:
            return Duplicate(existing)
        chosen = await self._chosen_groups(group_guids)
        if isinstance(chosen, FileProblem):
            return NotFiled(chosen)
        new = NewRequest(
            request_id=self.id_factory(),
            requester_id=requester_id,
            person=_account_person(account),
            justification=justification,
            created_at=self.clock(),
            kind=kind,
            role_asked=role_asked,
            role_before=account.user_role,
            connect_guid=account.guid,
            groups=chosen,
        )
        return await self._create(new, _filed_outbox(response_url))

    async def link_subject(self, email: str) -> tuple[str | None, SubjectLink | None]:
        """The Slack account of the person a request is for, matched by the directory's email,
        so that they cannot decide it; why not, when there is none."""
        if self.people is None:
            return None, None
        if not email.strip():
            return None, SubjectLink.NO_EMAIL
        try:
            found = await self.people.person_id(email.strip())
        except PersonLookupUnavailable:
            log.warning("could not match the person of a request to a Slack account")
            return None, SubjectLink.UNAVAILABLE
        return (found, SubjectLink.LINKED) if found else (None, SubjectLink.NOT_FOUND)

    async def create(self, new: NewRequest, outbox: list[OutboxItem]) -> FileOutcome:
        """Store a request prepared elsewhere (its person matched to a Slack account first)."""
        return await self._create(new, outbox)

    async def _create(self, new: NewRequest, outbox: list[OutboxItem]) -> FileOutcome:
        # A group request is about nobody: there is no one to keep from deciding it.
        subject_id, link = (
            (None, None)
            if new.group_name is not None
            else await self.link_subject(new.person.email)
        )
        new = dataclasses.replace(new, subject_id=subject_id, subject_link=link)
        try:
            request = await self.store.create(new, outbox=outbox)
        except DuplicateRequestError as exc:
            return Duplicate(exc.existing)
        log.info("request %s (%s) filed by %s", request.id, request.kind, new.requester_id)
        self.metrics.request_filed(request.kind.value)
        self._on_outbox()
        return Filed(request)

    # -- role changes ----------------------------------------------------------------------------

    async def role_form(self, guid: str) -> RoleFormOutcome:
        """What the role-change form offers for the account `guid` (which came back from a
        button: it is only looked up). Read from Connect now, so the form shows the role the
        account has, not the one a search showed. The roles offered are those a role change
        may ask for (`roles_offered`) but the account's own."""
        try:
            account = await self.directory.get_account(guid)
        except DirectoryError as exc:
            log.warning("could not read the account for a role change: %s", exc.problem)
            return NoRoleForm(RoleFormProblem.CANNOT_READ)
        if account is None:
            return NoRoleForm(RoleFormProblem.NO_ACCOUNT)
        offered = await self._role_choice()
        if offered is None:  # Connect cannot say now which roles the bot may set
            return NoRoleForm(RoleFormProblem.CANNOT_READ)
        if not offered:
            return NoRoleForm(RoleFormProblem.ROLES_NOT_MANAGED)
        roles = tuple(role for role in offered if role != account.user_role)
        if not roles:
            return NoRoleForm(RoleFormProblem.NO_OTHER_ROLE, account)
        return RoleForm(account, roles)

    # -- Connect groups in request forms ----------------------------------------------------------

    async def group_choice(self) -> GroupChoice:
        """Whether request forms offer Connect groups: where Connect manages membership itself
        (groups on, membership not from the provider) and the bot's key is an administrator's
        (adding to a group its owner does not own needs one). Unknown counts as not offered."""
        if self.groups is None:
            return GroupChoice(GroupChoiceProblem.GROUPS_OFF)
        try:
            caps = await self.directory.capabilities()
            if caps.groups_enabled is False:
                return GroupChoice(GroupChoiceProblem.GROUPS_OFF)
            if caps.provider_owns_group_members is True:
                return GroupChoice(GroupChoiceProblem.PROVIDER_OWNS_MEMBERS)
            if caps.groups_enabled is None or caps.provider_owns_group_members is None:
                return GroupChoice(GroupChoiceProblem.CANNOT_READ)
            if await self.directory.key_role() != "administrator":
                return GroupChoice(GroupChoiceProblem.KEY_NOT_ADMIN)
        except DirectoryError as exc:
            log.warning("cannot tell whether groups can be offered: %s", exc.problem)
            return GroupChoice(GroupChoiceProblem.CANNOT_READ)
        return GroupChoice()

    async def group_options(self, prefix: str) -> tuple[GroupRef, ...]:
        """Connect groups whose name starts with `prefix`, for a form's group select; none
        where groups are not offered or Connect does not answer (the form then says nothing
        matched: it never fails)."""
        if self.groups is None or not (await self.group_choice()).offered:
            return ()
        try:
            return await self.groups.list_groups(prefix.strip(), limit=MAX_GROUP_OPTIONS)
        except DirectoryError as exc:
            log.warning("could not list Connect groups for a form: %s", exc.problem)
            return ()

    async def _chosen_groups(self, guids: Sequence[str]) -> tuple[GroupRef, ...] | FileProblem:
        """The groups a form came back with, read from Connect now (their GUIDs come from the
        requester's client): each must exist, and groups must be offered at all."""
        wanted = list(dict.fromkeys(guid for guid in guids if guid))
        if not wanted:
            return ()
        if len(wanted) > MAX_GROUPS:
            return FileProblem.TOO_MANY_GROUPS
        if self.groups is None or not (await self.group_choice()).offered:
            return FileProblem.GROUPS_NOT_OFFERED
        found: list[GroupRef] = []
        for guid in wanted:
            try:
                group = await self.groups.get_group(guid)
            except DirectoryError as exc:
                log.warning("could not confirm a group chosen: %s", exc.problem)
                return FileProblem.CANNOT_VERIFY
            if group is None:
                return FileProblem.GROUP_NOT_FOUND
            found.append(group)
        return tuple(found)

    async def join_form(self, guid: str) -> JoinFormOutcome:
        """What the Join groups form offers for the account `guid` (which came back from a
        button: it is only looked up): the account as Connect has it now, where groups may be
        offered."""
        choice = await self.group_choice()
        if choice.problem is not None:
            return NoJoinForm(groups_problem=choice.problem)
        try:
            account = await self.directory.get_account(guid)
        except DirectoryError as exc:
            log.warning("could not read the account for a group request: %s", exc.problem)
            return NoJoinForm(account_problem=RoleFormProblem.CANNOT_READ)
        if account is None:
            return NoJoinForm(account_problem=RoleFormProblem.NO_ACCOUNT)
        return JoinForm(account)

    async def file_join_groups(
        self,
        *,
        requester_id: str,
        guid: str,
        group_guids: Sequence[str],
        justification: str,
        response_url: str | None = None,
    ) -> FileOutcome:
        """File a request to add the existing account `guid` to the Connect groups
        `group_guids`. Both come back from the requester's client: the account and each group
        are read from Connect now."""
        justification = justification.strip()[:MAX_JUSTIFICATION]
        if not justification:
            return NotFiled(FileProblem.EMPTY_JUSTIFICATION)
        if not [g for g in group_guids if g]:
            return NotFiled(FileProblem.NO_GROUPS_CHOSEN)
        form = await self.join_form(guid)
        if isinstance(form, NoJoinForm):
            if form.groups_problem is not None:
                return NotFiled(FileProblem.GROUPS_NOT_OFFERED)
            return NotFiled(_FORM_PROBLEMS[form.account_problem or RoleFormProblem.CANNOT_READ])
        account = form.account
        return await self._file_for_account(
            requester_id,
            account,
            justification,
            RequestKind.JOIN_GROUPS,
            response_url=response_url,
            group_guids=group_guids,
        )

    # -- directory groups ----------------------------------------------------------------------

    async def _group_search_refused(self) -> bool:
        """Whether Connect says its directory groups cannot be searched (groups off, or they
        come from a provider without remote group search); unknown: not refused (try)."""
        try:
            caps = await self.directory.capabilities()
        except DirectoryError:
            return False
        return caps.groups_enabled is False or caps.remote_group_search is False

    async def group_search(self, prefix: str) -> GroupSearchOutcome:
        """Directory (LDAP) groups for a prefix, each in Connect already or not, without their
        tickets (filing reads a fresh one)."""
        if self.groups is None or await self._group_search_refused():
            return GroupSearchOutcome(problem=SearchProblem.NO_GROUP_SEARCH)
        try:
            page = await self.groups.search_directory_groups(prefix, limit=self.search_limit)
        except DirectoryRefused as exc:
            if exc.kind is DirectoryProblem.PROVIDER_CANNOT:
                return GroupSearchOutcome(problem=SearchProblem.NO_GROUP_SEARCH)
            return GroupSearchOutcome(problem=_search_problem(exc, "group search"))
        except DirectoryError as exc:
            return GroupSearchOutcome(problem=_search_problem(exc, "group search"))
        return GroupSearchOutcome(
            page=DirectoryGroupPage(
                groups=tuple(dataclasses.replace(g, temp_ticket="") for g in page.groups),
                total=page.total,
            )
        )

    async def file_group_request(
        self,
        *,
        requester_id: str,
        name: str,
        justification: str,
        response_url: str | None = None,
    ) -> FileOutcome:
        """File a request to bring the directory group `name` into Connect.

        The name comes back from the requester's client (a button): the group and its ticket
        are read from the directory now. Directory group names are not unique: a name that
        several groups share is refused, since the approvers could not tell which one."""
        justification = justification.strip()[:MAX_JUSTIFICATION]
        if not justification:
            return NotFiled(FileProblem.EMPTY_JUSTIFICATION)
        if self.groups is None or await self._group_search_refused():
            return NotFiled(FileProblem.NO_GROUP_SEARCH)
        existing = await self.store.find_active_group(name)
        if existing is not None:
            return Duplicate(existing)
        try:
            found = await self.groups.find_directory_groups(name)
        except DirectoryRefused as exc:
            if exc.kind is DirectoryProblem.PROVIDER_CANNOT:
                return NotFiled(FileProblem.NO_GROUP_SEARCH)
            log.warning("could not confirm the group in the directory: %s", exc.problem)
            return NotFiled(FileProblem.CANNOT_VERIFY)
        except DirectoryError as exc:
            log.warning("could not confirm the group in the directory: %s", exc.problem)
            return NotFiled(FileProblem.CANNOT_VERIFY)
        if not found:
            return NotFiled(FileProblem.GROUP_NOT_IN_DIRECTORY)
        if len(found) > 1:
            return NotFiled(FileProblem.GROUP_NAME_AMBIGUOUS)
        [group] = found
        if group.in_connect:
            return NotFiled(FileProblem.GROUP_IN_CONNECT, guid=group.guid)
        if not group.temp_ticket:
            return NotFiled(FileProblem.GROUP_NOT_IN_DIRECTORY)
        try:
            taken = await self.groups.find_group(name)
        except DirectoryError as exc:
            log.warning("could not look for a Connect group of that name: %s", exc.problem)
            return NotFiled(FileProblem.CANNOT_VERIFY)
        if taken is not None:
            # Another Connect group has the name (Connect would answer code 15): approving
            # could not bring this one in.
            return NotFiled(FileProblem.GROUP_NAME_TAKEN, guid=taken.guid)
        outbox = _filed_outbox(response_url)
        new = NewRequest(
            request_id=self.id_factory(),
            requester_id=requester_id,
            # No person: the group's ticket rides where a person's would.
            person=Person(username="", full_name="", email="", temp_ticket=group.temp_ticket),
            justification=justification,
            created_at=self.clock(),
            kind=RequestKind.NEW_GROUP,
            group_name=group.name,
        )
        return await self._create(new, outbox)

    # -- decide ----------------------------------------------------------------------------------

    async def check_can_decide(
        self, request_id: str, user_id: str
    ) -> ProvisioningRequest | Refused:
        """The authorisation every decision goes through, checked on the server at click time.
        Returns the request (as read for the check) when the user may decide it."""
        return await self._decider_gate(
            request_id, user_id, RequestState.PENDING, Refusal.ALREADY_DECIDED
        )

    async def _decider_gate(
        self, request_id: str, user_id: str, state: RequestState, otherwise: Refusal
    ) -> ProvisioningRequest | Refused:
        """An approver, not the requester, checked now, on a request in `state` (else
        `otherwise`)."""
        request = await self.store.get(request_id)
        if request is None:
            return Refused(Refusal.NOT_FOUND)
        if user_id == request.requester_id:
            return Refused(Refusal.SELF_APPROVAL, request)
        if request.subject_id is not None and user_id == request.subject_id:
            # Nobody approves their own access, even when someone else asked for it.
            return Refused(Refusal.SUBJECT, request)
        grants = _role_at_stake(request)
        refused = await approver_refusal(self.approvers, user_id, grants=grants)
        if refused is not None:
            return Refused(refused, request)
        if request.state is not state:
            return Refused(otherwise, request)
        return request

    async def approve(
        self,
        request_id: str,
        approver_id: str,
        role: str | None = None,
        *,
        seen: str | None = None,
        note: str | None = None,
    ) -> DecisionOutcome:
        """Approve, granting `role` (default: the role asked), with an optional `note` for the
        card and the requester. The role comes back from the approver's client: it must be one
        REQUESTABLE_ROLES allows, and a role above the one asked is a new question
        (RoleRaised), never a silent change.

        `seen` is the role the request asked for when the approver's confirmation opened: if
        it asks for another since (a raise), this approval answers a question it did not see
        and is refused.

        Where APPROVALS_REQUIRED asks for more than one approval of the role, the approval is
        recorded and counted (ApprovalCounted) until the last one needed: only that one carries
        the request out, once, however many approvers click at the same moment."""
        allowed = await self.check_can_decide(request_id, approver_id)
        if isinstance(allowed, Refused):
            return allowed
        if seen is not None and seen != allowed.role_asked:
            return Refused(Refusal.ROLE_CHANGED, allowed)
        granted = allowed.role_asked if role is None else role
        if allowed.step(StepAction.SET_ROLE) is None:
            if role is not None:  # no role is set for this request (none was offered)
                return Refused(Refusal.ROLE_NOT_REQUESTABLE, allowed)
        elif granted not in self.requestable_roles or (
            allowed.kind is RequestKind.ROLE_CHANGE and granted == allowed.role_before
        ):
            return Refused(Refusal.ROLE_NOT_REQUESTABLE, allowed)
        if granted is not None and outranks(granted, allowed.role_asked):
            return await self._raise_role(allowed, approver_id, granted)
        # A lock or an unlock grants no role but touches the account's own: an administrator's
        # needs administrator approvers, as many as granting Administrator would.
        needed = self.approvals_required.needed(
            allowed.role_before if allowed.kind in LOCK_KINDS else granted
        )
        now = self.clock()
        recorded = await self.store.record_approval(
            request_id,
            approver_id=approver_id,
            role=granted,
            note=(note or "").strip()[:MAX_APPROVAL_NOTE] or None,
            now=now,
            # The role the approver saw is the role approved: a raise in between (another
            # approver's) makes this click lose, also one made while this one was checked.
            expect_role=allowed.role_asked,
            needed=needed,
            on_reached={
                "decided_by": approver_id,
                "decided_at": now,
                "lease_owner": self.provisioner.instance_id,
                "last_error": None,
                "outcome_note": None,
                "role_granted": granted,
            },
            # By the database's clock, which every replica shares.
            lease_seconds=self.provisioner.lease.total_seconds(),
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
        )
        if recorded is None:
            current = await self.store.get(request_id)
            if (
                current is not None
                and current.state is RequestState.PENDING
                and current.role_asked != allowed.role_asked
            ):
                return Refused(Refusal.ROLE_CHANGED, current)
            return Refused(Refusal.ALREADY_DECIDED, current)
        self._on_outbox()
        if not recorded.reached:
            if not recorded.counted:
                return Refused(Refusal.ALREADY_APPROVED, recorded.request)
            log.info(
                "request %s: approval by %s recorded, %d needed", request_id, approver_id, needed
            )
            return ApprovalCounted(recorded.request, needed, granted)
        self._count_decision(recorded.request, "approved")
        log.info("request %s approved by %s; carrying it out", request_id, approver_id)
        return Decided(await self.provisioner.carry_out(recorded.request))

    async def _raise_role(
        self, request: ProvisioningRequest, approver_id: str, role: str
    ) -> DecisionOutcome:
        raised = await self.store.transition(
            request.id,
            from_states={RequestState.PENDING},
            to_state=RequestState.PENDING,
            now=self.clock(),
            changes={
                "role_asked": role,
                "raised_by": approver_id,
                "raised_from": request.role_asked,
            },
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD), OutboxItem(OutboxKind.NOTIFY_REQUESTER)],
            expect={"role_asked": request.role_asked},
        )
        if raised is None:
            return Refused(Refusal.ALREADY_DECIDED, await self.store.get(request.id))
        log.info("request %s: %s raised the role to %s", request.id, approver_id, role)
        self._on_outbox()
        return RoleRaised(raised)

    async def retry(self, request_id: str, user_id: str) -> DecisionOutcome:
        """Retry the step that failed (an incomplete request's role), alone: the same
        click-time checks as a decision, and the role must still be one the bot may grant."""
        request = await self._incomplete_for(request_id, user_id)
        if isinstance(request, Refused):
            return request
        if request.role_granted is not None and request.role_granted not in self.requestable_roles:
            return Refused(Refusal.ROLE_NOT_REQUESTABLE, request)
        claimed = await self.store.transition(
            request_id,
            from_states={RequestState.INCOMPLETE},
            to_state=RequestState.PROVISIONING,
            now=self.clock(),
            changes={"lease_owner": self.provisioner.instance_id, "last_error": None},
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
            lease_seconds=self.provisioner.lease.total_seconds(),
        )
        if claimed is None:
            return Refused(Refusal.NOTHING_TO_RETRY, await self.store.get(request_id))
        self._on_outbox()
        log.info("request %s: %s retries the failed step", request_id, user_id)
        return Decided(await self.provisioner.carry_on(claimed))

    async def close(self, request_id: str, user_id: str) -> DecisionOutcome:
        """Close an incomplete request as it stands (a step that cannot succeed: the account
        was deleted, the key may not set roles, the provider took roles over). The record says
        what Connect had when it was closed."""
        request = await self._incomplete_for(request_id, user_id)
        if isinstance(request, Refused):
            return request
        note = await self._role_in_connect(request)
        closed = await self.store.transition(
            request_id,
            from_states={RequestState.INCOMPLETE},
            to_state=RequestState.CLOSED,
            now=self.clock(),
            changes={"closed_by": user_id, "outcome_note": note},
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD), OutboxItem(OutboxKind.NOTIFY_REQUESTER)],
        )
        if closed is None:
            return Refused(Refusal.NOTHING_TO_RETRY, await self.store.get(request_id))
        self._on_outbox()
        log.info("request %s closed incomplete by %s", request_id, user_id)
        return Decided(closed)

    async def _incomplete_for(self, request_id: str, user_id: str) -> ProvisioningRequest | Refused:
        """The gate of what is left to do on an incomplete request: the decision's gate."""
        return await self._decider_gate(
            request_id, user_id, RequestState.INCOMPLETE, Refusal.NOTHING_TO_RETRY
        )

    async def _role_in_connect(self, request: ProvisioningRequest) -> str:
        start = "Closed with its failed step not done."
        if not request.connect_guid:
            return start
        try:
            account = await self.directory.get_account(request.connect_guid)
        except DirectoryError as exc:
            return f"{start} The account's role could not be read ({exc.problem})."
        if account is None:
            return f"{start} The account is no longer in Connect."
        if request.kind in (RequestKind.LOCK, RequestKind.UNLOCK):
            return (
                f"{start} The account is {'locked' if account.locked else 'unlocked'} in Connect."
            )
        return f"{start} The account's role in Connect: {role_label(account.user_role)}."

    async def deny(self, request_id: str, approver_id: str, reason: str) -> DecisionOutcome:
        allowed = await self.check_can_decide(request_id, approver_id)
        if isinstance(allowed, Refused):
            return allowed
        denied = await self._move_pending(
            request_id,
            RequestState.DENIED,
            changes={
                "decided_by": approver_id,
                "decided_at": self.clock(),
                "deny_reason": reason.strip()[:MAX_DENY_REASON],
                "temp_ticket": "",
            },
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD), OutboxItem(OutboxKind.NOTIFY_REQUESTER)],
        )
        if isinstance(denied, Refused):
            return denied
        self._count_decision(denied, "denied")
        log.info("request %s denied by %s", request_id, approver_id)
        return Decided(denied)

    async def cancel(self, request_id: str, user_id: str) -> DecisionOutcome:
        """The requester withdraws a request nobody has decided yet."""
        request = await self.store.get(request_id)
        if request is None:
            return Refused(Refusal.NOT_FOUND)
        if user_id != request.requester_id:
            return Refused(Refusal.NOT_REQUESTER, request)
        if request.state is not RequestState.PENDING:
            return Refused(Refusal.ALREADY_DECIDED, request)
        cancelled = await self._move_pending(
            request_id,
            RequestState.CANCELLED,
            changes={"decided_by": user_id, "decided_at": self.clock(), "temp_ticket": ""},
            # The requester is answered on the spot (they clicked); the approvers see the card.
            outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
        )
        if isinstance(cancelled, Refused):  # an approver's click won the race
            return cancelled
        self._count_decision(cancelled, "cancelled")
        log.info("request %s cancelled by its requester", request_id)
        return Decided(cancelled)

    def _count_decision(self, request: ProvisioningRequest, outcome: str) -> None:
        waited = (
            (request.decided_at - request.created_at).total_seconds()
            if request.decided_at and request.created_at
            else None
        )
        self.metrics.request_decided(request.kind.value, outcome, waited)

    async def _move_pending(
        self,
        request_id: str,
        to_state: RequestState,
        *,
        changes: dict[str, object],
        outbox: list[OutboxItem],
    ) -> ProvisioningRequest | Refused:
        """One conditional UPDATE out of `pending`; whoever loses the race is told who won."""
        moved = await self.store.transition(
            request_id,
            from_states={RequestState.PENDING},
            to_state=to_state,
            now=self.clock(),
            changes=changes,
            outbox=outbox,
        )
        if moved is None:
            return Refused(Refusal.ALREADY_DECIDED, await self.store.get(request_id))
        self._on_outbox()
        return moved

    async def _approver_refusal(self, user_id: str) -> Refusal | None:
        """The approver check shared by decisions and by what only approvers may see."""
        return await approver_refusal(self.approvers, user_id)

    # -- lists -----------------------------------------------------------------------------------

    async def pending_requests(self, user_id: str, *, limit: int) -> RequestList | Refused:
        """What waits for an approver, oldest first; only approvers may see it (directory data
        and justifications are for the people who decide)."""
        refused = await self._approver_refusal(user_id)
        if refused is not None:
            return Refused(refused)
        # An incomplete request waits for an approver too (a retry of its failed step).
        states = {RequestState.PENDING, RequestState.INCOMPLETE}
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


def _role_at_stake(request: ProvisioningRequest) -> str | None:
    """The role a decision on `request` is about, for who may make it: the role approved (a
    retry, a close) or asked; for a lock or an unlock, the account's own role (unlocking an
    administrator gives an administrator back their access)."""
    if request.kind in LOCK_KINDS:
        return request.role_before
    return request.role_granted or request.role_asked


def _filed_outbox(response_url: str | None) -> list[OutboxItem]:
    """What filing a request owes: its card, and the requester's confirmation where they can
    be answered (their click's response_url)."""
    outbox = [OutboxItem(OutboxKind.POST_CARD)]
    if response_url:
        outbox.append(OutboxItem(OutboxKind.CONFIRM_REQUESTER, {"response_url": response_url}))
    return outbox


def _account_person(account: Account) -> Person:
    """The person a request about an existing account is for (no ticket: it is made)."""
    return Person(
        username=account.username,
        full_name=account.full_name,
        email=account.email,
        temp_ticket="",
    )


def _search_problem(exc: DirectoryError, what: str) -> SearchProblem:
    """A failed search as the searcher is told, logged as the operator needs it."""
    if isinstance(exc, DirectoryRefused):
        problem = _SEARCH_REFUSALS.get(exc.kind, SearchProblem.CONNECT_GARBAGE)
        if problem is SearchProblem.CONFIGURATION:
            log.error("%s refused: %s", what, exc.explanation)
        else:
            log.warning("%s refused: %s", what, exc.explanation)
        return problem
    if isinstance(exc, DirectoryUnavailable):
        log.warning("%s unavailable: %s", what, exc.problem)
        return SearchProblem.CONNECT_UNAVAILABLE
    log.warning("%s answered garbage: %s", what, exc.problem)
    return SearchProblem.CONNECT_GARBAGE


def _without_tickets(page: DirectoryPage) -> DirectoryPage:
    return DirectoryPage(
        entries=tuple(dataclasses.replace(entry, temp_ticket="") for entry in page.entries),
        total=page.total,
    )
