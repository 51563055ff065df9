"""Offboarding: when Slack deactivates someone whose Connect account is still active, the bot
asks the approvers whether to lock it (a lock request it files itself: Lock approves it through
the same gate as any request, Keep declines it); a reactivation before anyone decided closes it.

At most one open lock request per Connect account, however often Slack repeats the event and
however many replicas receive it: a lock request is filed under the account's username, and the
database keeps one active request per username (the loser of a race finds the winner's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.workflow.clock import Clock, utcnow
from bot.workflow.models import (
    BOT_REQUESTER,
    Account,
    NewRequest,
    OutboxItem,
    OutboxKind,
    Person,
    ProvisioningRequest,
    RequestKind,
    SubjectLink,
)
from bot.workflow.ports import (
    NO_METRICS,
    Directory,
    DirectoryError,
    DuplicateRequestError,
    Metrics,
    RequestStore,
)
from bot.workflow.requests import MIN_ACCOUNT_PREFIX, new_request_id
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)

# An approver's Keep is remembered this long for that person's account: Slack repeats events
# (retries, later edits of a deactivated profile) and the approvers are not asked again.
KEEP_REMEMBERED = timedelta(days=30)
# How many recent requests about a person are read for the account the bot linked them to.
LINK_LOOKBACK = 20
# At most this many account searches (the email's local part, then names) per deactivation.
MAX_NAME_SEARCHES = 3
SEARCH_LIMIT = 50

REACTIVATED_NOTE = "Reactivated in Slack before anyone decided: nothing to lock."


@dataclass(frozen=True, slots=True)
class SlackPerson:
    """Who Slack says changed: their id, their email (may be empty) and the names to search
    Connect's accounts by when the bot never linked them to one."""

    slack_id: str
    email: str = ""
    names: tuple[str, ...] = ()


class Deactivations:
    def __init__(
        self,
        *,
        store: RequestStore,
        directory: Directory,
        clock: Clock = utcnow,
        id_factory: Callable[[], str] = new_request_id,
        on_outbox: Callable[[], None] | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.store = store
        self.directory = directory
        self.clock = clock
        self.id_factory = id_factory
        self._on_outbox = on_outbox or (lambda: None)
        # Counted as Requests counts what people file and cancel, so the bot's own lock
        # requests show in the same series.
        self.metrics = metrics

    async def deactivated(self, person: SlackPerson) -> ProvisioningRequest | None:
        """File (or find) the lock request for the Connect account of someone Slack
        deactivated; None when there is nothing to ask (no account found, locked already, a
        recent Keep, or a key that may not lock)."""
        try:
            if await self.directory.key_role() != "administrator":
                log.warning(
                    "a Slack member was deactivated, but the bot's Connect key may not lock "
                    "accounts: no card is posted"
                )
                return None
            account = await self._account_of(person)
        except DirectoryError as exc:
            # Slack retries an event it thinks failed, but Bolt acknowledged it already: logged
            # so an operator can lock by hand (or /connect-user lock).
            log.warning(
                "could not look for a deactivated member's Connect account: %s", exc.problem
            )
            return None
        if account is None or account.locked:
            return None
        existing = await self.store.find_active(account.username)
        if existing is not None:
            if existing.kind is not RequestKind.LOCK:
                # One open request per account: the approvers decide that one first.
                log.warning(
                    "request %s is open for a member Slack deactivated: no lock question until "
                    "it is decided (/connect-user lock asks then)",
                    existing.id,
                )
            return existing  # already asked (a repeated event, another replica, or a person)
        if await self._kept_lately(person.slack_id, account.guid):
            return None
        name = account.full_name or account.username
        new = NewRequest(
            request_id=self.id_factory(),
            requester_id=BOT_REQUESTER,
            person=Person(
                username=account.username,
                full_name=account.full_name,
                email=account.email,
                temp_ticket="",
            ),
            justification=(
                f"{name} was deactivated in Slack; their Connect account is still active."
            ),
            created_at=self.clock(),
            kind=RequestKind.LOCK,
            role_before=account.user_role,
            connect_guid=account.guid,
            subject_id=person.slack_id,
            subject_link=SubjectLink.LINKED,
        )
        try:
            request = await self.store.create(new, outbox=[OutboxItem(OutboxKind.POST_CARD)])
        except DuplicateRequestError as exc:
            return exc.existing
        log.info("request %s: asked to lock the account of a deactivated member", request.id)
        self.metrics.request_filed(request.kind.value)
        self._on_outbox()
        return request

    async def reactivated(self, slack_id: str) -> list[ProvisioningRequest]:
        """Close the undecided lock requests the bot filed for this person (one conditional
        update each: an approver's click in between wins)."""
        open_requests = await self.store.list_requests(
            states={RequestState.PENDING},
            requester_id=BOT_REQUESTER,
            subject_id=slack_id,
            limit=LINK_LOOKBACK,
        )
        closed = []
        for request in open_requests:
            moved = await self.store.transition(
                request.id,
                from_states={RequestState.PENDING},
                to_state=RequestState.CANCELLED,
                now=self.clock(),
                changes={"decided_at": self.clock(), "outcome_note": REACTIVATED_NOTE},
                outbox=[OutboxItem(OutboxKind.UPDATE_CARD)],
                expect={"requester_id": BOT_REQUESTER},
            )
            if moved is not None:
                log.info("request %s closed: the member was reactivated in Slack", request.id)
                waited = (
                    (moved.decided_at - moved.created_at).total_seconds()
                    if moved.decided_at and moved.created_at
                    else None
                )
                self.metrics.request_decided(moved.kind.value, "cancelled", waited)
                closed.append(moved)
        if closed:
            self._on_outbox()
        return closed

    async def _account_of(self, person: SlackPerson) -> Account | None:
        """The person's Connect account: by the link the bot recorded (a request it carried
        out for them), else the one account whose email is exactly theirs."""
        linked = await self._linked_guid(person.slack_id)
        if linked is not None:
            account = await self.directory.get_account(linked)
            if account is not None:
                return account
        return await self._by_email(person)

    async def _linked_guid(self, slack_id: str) -> str | None:
        recent = await self.store.list_requests(
            subject_id=slack_id, newest_first=True, limit=LINK_LOOKBACK
        )
        linked = (
            RequestState.APPROVED,
            RequestState.ALREADY_EXISTS,
            RequestState.INCOMPLETE,
            RequestState.CLOSED,
        )
        return next(
            (r.connect_guid for r in recent if r.connect_guid and r.state in linked),
            None,
        )

    async def _by_email(self, person: SlackPerson) -> Account | None:
        email = person.email.strip().casefold()
        if "@" not in email:
            return None
        found: dict[str, str] = {}
        for prefix in _prefixes(email.split("@", 1)[0], person.names):
            page = await self.directory.search_accounts(prefix, limit=SEARCH_LIMIT)
            for entry in page.entries:
                if entry.guid and entry.email.strip().casefold() == email:
                    found[entry.guid] = entry.username
        if len(found) != 1:
            if found:
                log.warning("several Connect accounts share a deactivated member's email")
            return None
        [guid] = found
        # Read again: a search may be cached, and whether it is locked must be now.
        return await self.directory.get_account(guid)

    async def _kept_lately(self, slack_id: str, guid: str) -> bool:
        recent = await self.store.list_requests(
            requester_id=BOT_REQUESTER,
            subject_id=slack_id,
            states={RequestState.DENIED},
            newest_first=True,
            limit=1,
        )
        since = self.clock() - KEEP_REMEMBERED
        return any(
            r.connect_guid == guid and r.decided_at is not None and r.decided_at >= since
            for r in recent
        )


def _prefixes(local_part: str, names: Sequence[str]) -> list[str]:
    """What to search accounts by: the email's local part, then each name (Connect matches a
    prefix of the username, first or last name), without repeats or ones too short."""
    prefixes: list[str] = []
    for candidate in (local_part, *names):
        candidate = candidate.strip()
        if len(candidate) >= MIN_ACCOUNT_PREFIX and candidate.casefold() not in {
            p.casefold() for p in prefixes
        }:
            prefixes.append(candidate)
    return prefixes[:MAX_NAME_SEARCHES]
