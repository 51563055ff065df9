"""The workflow's decisions against in-process fakes of its ports: a scripted directory and a
scripted approver policy, over the real store on an SQLite file. No Slack, no HTTP, no servers:
each branch of searching, filing and deciding in milliseconds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store.database import create_engine
from bot.store.migrate import upgrade
from bot.store.sql_store import SqlRequestStore
from bot.workflow.models import (
    Account,
    DirectoryCapabilities,
    DirectoryEntry,
    DirectoryPage,
    NewRequest,
    Person,
)
from bot.workflow.outcomes import (
    Decided,
    Duplicate,
    Filed,
    FileProblem,
    NoRoleForm,
    NotFiled,
    Refusal,
    Refused,
    RoleForm,
    RoleFormProblem,
    SearchProblem,
)
from bot.workflow.ports import (
    ApproverCheckUnavailable,
    ApproverVerdict,
    DirectoryError,
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
    DirectoryUnreadable,
)
from bot.workflow.provisioning import Provisioner
from bot.workflow.requests import Requests
from bot.workflow.states import RequestState

REQUESTER, APPROVER = "UREQUESTER", "UAPPROVER"


def refused(kind: DirectoryProblem, code: int) -> DirectoryRefused:
    return DirectoryRefused(
        kind, f"Connect refused the request (400, code {code})", f"No ({code})."
    )


STALE = refused(DirectoryProblem.STALE_TICKET, 127)


@dataclass
class Directory:
    """The directory as the workflow sees it: scripted answers, every call recorded."""

    entries: dict[str, DirectoryEntry] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    search_answer: DirectoryPage | DirectoryError | None = None
    find_entry_error: DirectoryError | None = None
    # What each PUT answers, in turn (an Account, or an error to raise).
    puts: list[Account | DirectoryError] = field(default_factory=list)
    tickets_sent: list[str] = field(default_factory=list)
    # What find_entry answers after each PUT (code 127 makes the workflow look again).
    after_put: dict[str, DirectoryEntry | None] = field(default_factory=dict)
    caps: DirectoryCapabilities | DirectoryError = field(
        default_factory=lambda: DirectoryCapabilities("LDAP", remote_user_search=True)
    )
    searches: int = 0
    account_searches: int = 0
    account_search_answer: DirectoryError | None = None
    get_account_error: DirectoryError | None = None
    key: str | None = "administrator"  # the role of the key's owner

    async def key_role(self) -> str | None:
        return self.key

    async def capabilities(self) -> DirectoryCapabilities:
        if isinstance(self.caps, DirectoryError):
            raise self.caps
        return self.caps

    async def search(self, prefix: str, *, limit: int) -> DirectoryPage:
        self.searches += 1
        if isinstance(self.search_answer, DirectoryError):
            raise self.search_answer
        if self.search_answer is not None:
            return self.search_answer
        found = tuple(e for e in self.entries.values() if e.username.startswith(prefix))
        return DirectoryPage(entries=found[:limit], total=len(found))

    async def find_entry(self, username: str) -> DirectoryEntry | None:
        if self.find_entry_error is not None:
            raise self.find_entry_error
        if self.tickets_sent and username in self.after_put:
            return self.after_put[username]
        return self.entries.get(username)

    async def create_account(self, temp_ticket: str) -> Account:
        self.tickets_sent.append(temp_ticket)
        answer = self.puts.pop(0)
        if isinstance(answer, DirectoryError):
            raise answer
        return answer

    async def find_account(self, username: str) -> Account | None:
        return self.accounts.get(username)

    async def search_accounts(self, prefix: str, *, limit: int) -> DirectoryPage:
        self.account_searches += 1
        if self.account_search_answer is not None:
            raise self.account_search_answer
        found = tuple(
            DirectoryEntry(a.username, guid=a.guid, user_role=a.user_role, locked=a.locked)
            for a in self.accounts.values()
            if a.username.startswith(prefix)
        )
        return DirectoryPage(entries=found[:limit], total=len(found))

    async def get_account(self, guid: str) -> Account | None:
        if self.get_account_error is not None:
            raise self.get_account_error
        return next((a for a in self.accounts.values() if a.guid == guid), None)


class Approvers:
    def __init__(self, verdicts: dict[str, ApproverVerdict] | None = None) -> None:
        self.verdicts = verdicts or {APPROVER: ApproverVerdict.APPROVER}
        self.unavailable = False

    async def approver_verdict(self, user_id: str, *, grants: str | None = None) -> ApproverVerdict:
        if self.unavailable:
            raise ApproverCheckUnavailable("Slack is down")
        return self.verdicts.get(user_id, ApproverVerdict.NOT_MEMBER)


def julie(ticket: str = "ticket-from-search", guid: str | None = None) -> DirectoryEntry:
    return DirectoryEntry("julie", "Julie", "Jolly", "julie@example.com", guid, temp_ticket=ticket)


def account(guid: str = "guid-julie") -> Account:
    return Account(guid=guid, username="julie", created_time=datetime.now(UTC))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlRequestStore]:
    engine = create_engine(f"sqlite:///{tmp_path / 'workflow.db'}")
    await upgrade(engine)
    try:
        yield SqlRequestStore(engine)
    finally:
        await engine.dispose()


def workflow(
    store: SqlRequestStore,
    directory: Directory,
    approvers: Approvers | None = None,
    *,
    requestable_roles: tuple[str, ...] = ("viewer", "publisher"),
) -> Requests:
    provisioner = Provisioner(
        store=store,
        directory=directory,
        instance_id="unit",
        lease_seconds=30,
        settle_delays=(0.0,),
    )
    return Requests(
        store=store,
        directory=directory,
        approvers=approvers or Approvers(),
        provisioner=provisioner,
        requestable_roles=requestable_roles,
    )


async def filed(requests: Requests) -> str:
    outcome = await requests.file_request(
        requester_id=REQUESTER, username="julie", justification="needs the dashboards"
    )
    assert isinstance(outcome, Filed), outcome
    return outcome.request.id


# -- search ----------------------------------------------------------------------------------


async def test_search_results_carry_no_tickets(store: SqlRequestStore) -> None:
    directory = Directory(entries={"julie": julie()})
    outcome = await workflow(store, directory).search("jul")
    assert outcome.problem is None and outcome.page is not None
    assert [e.username for e in outcome.page.entries] == ["julie"]
    assert outcome.page.entries[0].temp_ticket == ""


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (refused(DirectoryProblem.TOO_MANY_RESULTS, 83), SearchProblem.TOO_MANY_RESULTS),
        (refused(DirectoryProblem.NOT_PERMITTED, 24), SearchProblem.CONFIGURATION),
        (refused(DirectoryProblem.OTHER, 3), SearchProblem.CONNECT_GARBAGE),
        (DirectoryUnavailable("Connect did not answer in time"), SearchProblem.CONNECT_UNAVAILABLE),
        (DirectoryUnreadable("Connect gave an answer"), SearchProblem.CONNECT_GARBAGE),
    ],
)
async def test_each_directory_failure_is_a_search_problem(
    store: SqlRequestStore, error: DirectoryError, problem: SearchProblem
) -> None:
    outcome = await workflow(store, Directory(search_answer=error)).search("jul")
    assert outcome.page is None and outcome.problem is problem


SAML = DirectoryCapabilities("SAML", remote_user_search=False, provider_owns_roles=False)
LDAP = DirectoryCapabilities("LDAP", remote_user_search=True, provider_owns_roles=False)


def julies_account(**overrides: object) -> Account:
    fields: dict = {"guid": "guid-julie", "username": "julie", "user_role": "viewer"}
    fields.update(overrides)
    return Account(**fields)


async def test_without_remote_search_existing_accounts_are_searched(
    store: SqlRequestStore,
) -> None:
    directory = Directory(
        entries={"julie": julie()},
        accounts={"julie": julies_account(locked=True)},
        caps=SAML,
    )
    outcome = await workflow(store, directory).search("jul")
    assert directory.searches == 0, "Connect is not asked for a search it cannot do"
    assert directory.account_searches == 1
    assert outcome.problem is None and outcome.page is not None
    assert outcome.accounts_only and outcome.role_changes
    [entry] = outcome.page.entries
    assert (entry.guid, entry.user_role, entry.locked) == ("guid-julie", "viewer", True)


async def test_a_provider_refusing_remote_search_falls_back_to_accounts(
    store: SqlRequestStore,
) -> None:
    # An older Connect that does not say: its answer (code 132) does.
    directory = Directory(
        accounts={"julie": julies_account()},
        search_answer=refused(DirectoryProblem.PROVIDER_CANNOT, 132),
        caps=DirectoryCapabilities("old Connect"),
    )
    outcome = await workflow(store, directory).search("jul")
    assert directory.searches == 1 and directory.account_searches == 1
    assert outcome.accounts_only and outcome.page is not None
    assert [e.username for e in outcome.page.entries] == ["julie"]


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (refused(DirectoryProblem.NOT_PERMITTED, 24), SearchProblem.CONFIGURATION),
        (DirectoryUnavailable("Connect did not answer in time"), SearchProblem.CONNECT_UNAVAILABLE),
        (DirectoryUnreadable("Connect gave an answer"), SearchProblem.CONNECT_GARBAGE),
    ],
)
async def test_each_account_search_failure_is_a_search_problem(
    store: SqlRequestStore, error: DirectoryError, problem: SearchProblem
) -> None:
    directory = Directory(caps=SAML, account_search_answer=error)
    outcome = await workflow(store, directory).search("jul")
    assert outcome.page is None and outcome.problem is problem


@pytest.mark.parametrize(
    ("owns_roles", "key", "offered"),
    [
        (True, "administrator", False),
        (False, "administrator", True),
        (None, "administrator", False),  # unknown counts as no
        (False, "publisher", False),  # only an administrator's key can set roles
    ],
)
async def test_role_changes_are_offered_where_the_bot_can_set_roles(
    store: SqlRequestStore, owns_roles: bool | None, key: str, offered: bool
) -> None:
    caps = DirectoryCapabilities("LDAP", remote_user_search=True, provider_owns_roles=owns_roles)
    directory = Directory(entries={"julie": julie(guid="guid-julie")}, caps=caps, key=key)
    outcome = await workflow(store, directory).search("j")
    assert outcome.page is not None and not outcome.accounts_only
    assert outcome.role_changes is offered


async def test_roles_are_not_asked_about_when_no_account_was_found(
    store: SqlRequestStore,
) -> None:
    class Counting(Directory):
        key_reads = 0

        async def key_role(self) -> str | None:
            self.key_reads += 1
            return await super().key_role()

    directory = Counting(entries={"julie": julie()}, caps=LDAP)
    outcome = await workflow(store, directory).search("j")
    assert outcome.page is not None and not outcome.role_changes
    assert directory.key_reads == 0


@pytest.mark.parametrize(
    "caps",
    [DirectoryCapabilities("old Connect"), DirectoryUnavailable("Connect could not be reached")],
)
async def test_when_connect_does_not_say_the_search_is_tried(
    store: SqlRequestStore, caps: DirectoryCapabilities | DirectoryError
) -> None:
    directory = Directory(entries={"julie": julie()}, caps=caps)
    outcome = await workflow(store, directory).search("jul")
    assert outcome.page is not None and directory.searches == 1


# -- the role-change form ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "requestable", "offered"),
    [
        ("viewer", ("viewer", "publisher"), ("publisher",)),
        ("publisher", ("viewer", "publisher"), ("viewer",)),
        ("administrator", ("viewer", "publisher"), ("viewer", "publisher")),
        ("viewer", ("viewer", "publisher", "administrator"), ("publisher", "administrator")),
    ],
)
async def test_the_role_form_offers_the_requestable_roles_but_the_current_one(
    store: SqlRequestStore, current: str, requestable: tuple[str, ...], offered: tuple[str, ...]
) -> None:
    directory = Directory(accounts={"julie": julies_account(user_role=current)}, caps=LDAP)
    requests = workflow(store, directory, requestable_roles=requestable)
    form = await requests.role_form("guid-julie")
    assert isinstance(form, RoleForm), form
    assert form.roles == offered
    assert form.account.user_role == current


async def test_no_role_form_when_no_other_role_may_be_asked(store: SqlRequestStore) -> None:
    directory = Directory(accounts={"julie": julies_account(user_role="viewer")}, caps=LDAP)
    form = await workflow(store, directory, requestable_roles=("viewer",)).role_form("guid-julie")
    assert form == NoRoleForm(RoleFormProblem.NO_OTHER_ROLE, julies_account(user_role="viewer"))


async def test_no_role_form_when_the_provider_owns_roles(store: SqlRequestStore) -> None:
    caps = DirectoryCapabilities("OAuth2", remote_user_search=False, provider_owns_roles=True)
    directory = Directory(accounts={"julie": julies_account()}, caps=caps)
    form = await workflow(store, directory).role_form("guid-julie")
    assert form == NoRoleForm(RoleFormProblem.ROLES_NOT_MANAGED)


async def test_no_role_form_when_the_key_cannot_set_roles(store: SqlRequestStore) -> None:
    directory = Directory(accounts={"julie": julies_account()}, caps=LDAP, key="publisher")
    form = await workflow(store, directory).role_form("guid-julie")
    assert form == NoRoleForm(RoleFormProblem.ROLES_NOT_MANAGED)


async def test_no_role_form_when_connect_cannot_say_which_roles(store: SqlRequestStore) -> None:
    directory = Directory(
        accounts={"julie": julies_account()},
        caps=DirectoryUnavailable("Connect did not answer"),
    )
    form = await workflow(store, directory).role_form("guid-julie")
    assert form == NoRoleForm(RoleFormProblem.CANNOT_READ)


async def test_no_role_form_for_an_unknown_account(store: SqlRequestStore) -> None:
    form = await workflow(store, Directory(caps=LDAP)).role_form("guid-nobody")
    assert form == NoRoleForm(RoleFormProblem.NO_ACCOUNT)


@pytest.mark.parametrize(
    "error",
    [DirectoryUnavailable("Connect did not answer"), refused(DirectoryProblem.NOT_PERMITTED, 22)],
)
async def test_no_role_form_when_connect_does_not_give_the_account(
    store: SqlRequestStore, error: DirectoryError
) -> None:
    directory = Directory(accounts={"julie": julies_account()}, caps=LDAP, get_account_error=error)
    form = await workflow(store, directory).role_form("guid-julie")
    assert form == NoRoleForm(RoleFormProblem.CANNOT_READ)


# -- filing ----------------------------------------------------------------------------------


async def test_filing_reads_the_person_and_a_fresh_ticket_from_the_directory(
    store: SqlRequestStore,
) -> None:
    directory = Directory(entries={"julie": julie("fresh-ticket")})
    request_id = await filed(workflow(store, directory))
    request = await store.get(request_id)
    assert request is not None and request.state is RequestState.PENDING
    assert (request.full_name, request.email) == ("Julie Jolly", "julie@example.com")
    assert request.temp_ticket == "fresh-ticket"


@pytest.mark.parametrize(
    ("directory", "problem"),
    [
        (Directory(), FileProblem.NOT_IN_DIRECTORY),
        (Directory(entries={"julie": julie(ticket="")}), FileProblem.NOT_IN_DIRECTORY),
        (Directory(entries={"julie": julie(guid="g-1")}), FileProblem.ALREADY_HAS_ACCOUNT),
        (
            Directory(find_entry_error=DirectoryUnavailable("Connect could not be reached")),
            FileProblem.CANNOT_VERIFY,
        ),
    ],
)
async def test_filing_refused_by_what_the_directory_says(
    store: SqlRequestStore, directory: Directory, problem: FileProblem
) -> None:
    outcome = await workflow(store, directory).file_request(
        requester_id=REQUESTER, username="julie", justification="needs it"
    )
    assert isinstance(outcome, NotFiled) and outcome.problem is problem
    assert await store.find_active("julie") is None


async def test_filing_needs_a_justification_and_one_active_request_per_person(
    store: SqlRequestStore,
) -> None:
    requests = workflow(store, Directory(entries={"julie": julie()}))
    empty = await requests.file_request(requester_id=REQUESTER, username="julie", justification=" ")
    assert isinstance(empty, NotFiled) and empty.problem is FileProblem.EMPTY_JUSTIFICATION
    first = await filed(requests)
    again = await requests.file_request(
        requester_id="UOTHER", username="julie", justification="me too"
    )
    assert isinstance(again, Duplicate) and again.existing.id == first


# -- who decides -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "refusal"),
    [
        (ApproverVerdict.NOT_MEMBER, Refusal.NOT_APPROVER),
        (ApproverVerdict.GUEST, Refusal.GUEST),
        (ApproverVerdict.EXTERNAL, Refusal.EXTERNAL),
        (ApproverVerdict.BOT, Refusal.BOT),
        (ApproverVerdict.DEACTIVATED, Refusal.DEACTIVATED),
        (ApproverVerdict.UNSAFE_CHANNEL, Refusal.UNSAFE_CHANNEL),
    ],
)
async def test_every_verdict_but_approver_refuses_the_decision(
    store: SqlRequestStore, verdict: ApproverVerdict, refusal: Refusal
) -> None:
    directory = Directory(entries={"julie": julie()}, puts=[account()])
    requests = workflow(store, directory, Approvers({APPROVER: verdict}))
    request_id = await filed(requests)
    for decide in (
        requests.approve(request_id, APPROVER),
        requests.deny(request_id, APPROVER, "no"),
    ):
        outcome = await decide
        assert isinstance(outcome, Refused) and outcome.reason is refusal
    listed = await requests.pending_requests(APPROVER, limit=5)
    assert isinstance(listed, Refused) and listed.reason is refusal
    assert directory.tickets_sent == []


async def test_the_requester_never_decides_and_an_unknown_answer_refuses(
    store: SqlRequestStore,
) -> None:
    approvers = Approvers({REQUESTER: ApproverVerdict.APPROVER, APPROVER: ApproverVerdict.APPROVER})
    requests = workflow(store, Directory(entries={"julie": julie()}), approvers)
    request_id = await filed(requests)
    own = await requests.approve(request_id, REQUESTER)
    assert isinstance(own, Refused) and own.reason is Refusal.SELF_APPROVAL
    approvers.unavailable = True
    unknown = await requests.approve(request_id, APPROVER)
    assert isinstance(unknown, Refused) and unknown.reason is Refusal.CANNOT_CHECK
    missing = await requests.approve("0123456789abcdef", APPROVER)
    assert isinstance(missing, Refused) and missing.reason is Refusal.NOT_FOUND


# -- carrying out an approval ----------------------------------------------------------------


async def test_approval_creates_the_account_once(store: SqlRequestStore) -> None:
    directory = Directory(entries={"julie": julie("t-1")}, puts=[account()])
    requests = workflow(store, directory)
    request_id = await filed(requests)
    outcome = await requests.approve(request_id, APPROVER)
    assert isinstance(outcome, Decided)
    assert outcome.request.state is RequestState.APPROVED
    assert outcome.request.connect_guid == "guid-julie" and outcome.request.temp_ticket == ""
    again = await requests.approve(request_id, APPROVER)
    assert isinstance(again, Refused) and again.reason is Refusal.ALREADY_DECIDED
    assert directory.tickets_sent == ["t-1"]


async def test_a_stale_ticket_is_replaced_by_a_fresh_one_once(store: SqlRequestStore) -> None:
    directory = Directory(
        entries={"julie": julie("stale")},
        puts=[STALE, account()],
        after_put={"julie": julie("fresh")},
    )
    requests = workflow(store, directory)
    outcome = await requests.approve(await filed(requests), APPROVER)
    assert isinstance(outcome, Decided) and outcome.request.state is RequestState.APPROVED
    assert directory.tickets_sent == ["stale", "fresh"]


async def test_a_ticket_stale_twice_leaves_the_request_pending_with_the_reason(
    store: SqlRequestStore,
) -> None:
    directory = Directory(
        entries={"julie": julie("stale")},
        puts=[STALE, STALE],
        after_put={"julie": julie("still-stale")},
    )
    requests = workflow(store, directory)
    outcome = await requests.approve(await filed(requests), APPROVER)
    assert isinstance(outcome, Decided)
    request = outcome.request
    assert request.state is RequestState.PENDING and request.last_error == "No (127)."
    assert request.put_sent_at is None, "a definite refusal: nothing was created"
    assert directory.tickets_sent == ["stale", "still-stale"]


@pytest.mark.parametrize(
    ("after", "state", "error"),
    [
        (julie(guid="g-9"), RequestState.ALREADY_EXISTS, None),
        (None, RequestState.PENDING, "julie is no longer in the directory."),
    ],
)
async def test_a_stale_ticket_looks_again_and_settles_what_it_finds(
    store: SqlRequestStore, after: DirectoryEntry | None, state: RequestState, error: str | None
) -> None:
    directory = Directory(entries={"julie": julie()}, puts=[STALE], after_put={"julie": after})
    requests = workflow(store, directory)
    outcome = await requests.approve(await filed(requests), APPROVER)
    assert isinstance(outcome, Decided)
    assert outcome.request.state is state and outcome.request.last_error == error
    assert len(directory.tickets_sent) == 1


@pytest.mark.parametrize(
    "kind",
    [DirectoryProblem.NOT_PERMITTED, DirectoryProblem.PROVIDER_CANNOT, DirectoryProblem.LOCKED],
)
async def test_a_refused_put_goes_back_to_pending_with_the_explanation(
    store: SqlRequestStore, kind: DirectoryProblem
) -> None:
    directory = Directory(entries={"julie": julie()}, puts=[refused(kind, 0)])
    requests = workflow(store, directory)
    outcome = await requests.approve(await filed(requests), APPROVER)
    assert isinstance(outcome, Decided)
    assert outcome.request.state is RequestState.PENDING
    assert outcome.request.last_error == "No (0)." and outcome.request.decided_by is None


async def test_username_taken_by_an_older_account_is_already_there(store: SqlRequestStore) -> None:
    old = Account(guid="g-old", username="julie", created_time=datetime(2020, 1, 1, tzinfo=UTC))
    directory = Directory(
        entries={"julie": julie()},
        puts=[refused(DirectoryProblem.USERNAME_TAKEN, 8)],
        accounts={"julie": old},
    )
    requests = workflow(store, directory)
    outcome = await requests.approve(await filed(requests), APPROVER)
    assert isinstance(outcome, Decided)
    assert outcome.request.state is RequestState.ALREADY_EXISTS
    assert outcome.request.connect_guid == "g-old"


async def test_an_unknown_outcome_with_no_account_goes_back_to_pending(
    store: SqlRequestStore,
) -> None:
    directory = Directory(
        entries={"julie": julie()}, puts=[DirectoryUnavailable("Connect did not answer in time")]
    )
    requests = workflow(store, directory)
    outcome = await requests.approve(await filed(requests), APPROVER)
    assert isinstance(outcome, Decided)
    assert outcome.request.state is RequestState.PENDING
    assert outcome.request.last_error == (
        "Connect did not answer in time, and no account was created. Press Approve to try again."
    )
    assert outcome.request.unknown_put_at is not None, "the PUT may still be carried out"


async def test_deny_and_cancel_keep_no_ticket(store: SqlRequestStore) -> None:
    directory = Directory(entries={"julie": julie()})
    requests = workflow(store, directory)
    denied = await requests.deny(await filed(requests), APPROVER, "  not this quarter  ")
    assert isinstance(denied, Decided) and denied.request.state is RequestState.DENIED
    assert denied.request.deny_reason == "not this quarter" and denied.request.temp_ticket == ""
    cancelled = await requests.cancel(await filed(requests), REQUESTER)
    assert isinstance(cancelled, Decided) and cancelled.request.state is RequestState.CANCELLED
    assert cancelled.request.temp_ticket == ""


async def test_a_request_filed_elsewhere_is_decided_here(store: SqlRequestStore) -> None:
    """The store, not the process, holds a request: another replica's filing is approved here."""
    await store.create(
        NewRequest(
            request_id="0123456789abcdef",
            requester_id=REQUESTER,
            person=Person("julie", "Julie Jolly", "julie@example.com", "t-elsewhere"),
            justification="filed by another replica",
            created_at=datetime.now(UTC),
        )
    )
    directory = Directory(puts=[account()])
    outcome = await workflow(store, directory).approve("0123456789abcdef", APPROVER)
    assert isinstance(outcome, Decided) and outcome.request.state is RequestState.APPROVED
    assert directory.tickets_sent == ["t-elsewhere"]
