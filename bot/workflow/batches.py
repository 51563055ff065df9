"""Requests for many people at once: a list of usernames and emails resolved exactly, filed as
ordinary requests that share approval cards (one per part of at most PART_SIZE people), and
decided all at once or one by one.

Each person is an ordinary request underneath (its own steps, status, expiry, audit row and
exactly-once account), so everything the bot guarantees for one request holds for each; a batch
only adds what they share: the justification, the role asked, and the card.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.workflow.finding import same_email, shortlist
from bot.workflow.models import (
    DirectoryEntry,
    NewRequest,
    OutboxItem,
    OutboxKind,
    ProvisioningRequest,
)
from bot.workflow.outcomes import (
    ApprovalCounted,
    Decided,
    Duplicate,
    FileOutcome,
    NotFiled,
    Refusal,
    Refused,
    RoleRaised,
)
from bot.workflow.ports import (
    DirectoryError,
    DirectoryProblem,
    DirectoryRefused,
    DuplicateRequestError,
)
from bot.workflow.requests import Requests
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)

MAX_BATCH = 50
# People per card: each takes two blocks (who, and their buttons) and, at its longest, about
# 1,100 characters of the ~11,000 a message's blocks may hold beside the card's own header,
# justification and Approve all (tests/unit/test_batch_blocks.py renders the worst case).
PART_SIZE = 8
# Directory searches at once while resolving a list (Connect is one server among many users).
RESOLVE_CONCURRENCY = 5


class EntryStatus(StrEnum):
    READY = "ready"  # one entry, no account, no request: can be asked for
    HAS_ACCOUNT = "has_account"
    PENDING = "pending"  # an active request for them exists
    NOT_FOUND = "not_found"
    AMBIGUOUS = "ambiguous"  # several entries have that email (or username, in another case)
    TOO_BROAD = "too_broad"  # Connect found too many to tell
    UNAVAILABLE = "unavailable"  # Connect did not answer
    REPEATED = "repeated"  # the same person as an entry before it


@dataclass(frozen=True, slots=True)
class ResolvedEntry:
    """What one typed entry (a username or an email) names, exactly."""

    typed: str
    status: EntryStatus
    entry: DirectoryEntry | None = None  # without its ticket (filing reads it again)
    existing: ProvisioningRequest | None = None  # PENDING: the request there is


@dataclass(frozen=True, slots=True)
class BatchFiled:
    """The requests filed (sharing cards), and the usernames that were not, with why."""

    filed: tuple[ProvisioningRequest, ...]
    refused: tuple[tuple[str, FileOutcome], ...] = ()


@dataclass(frozen=True, slots=True)
class BatchDecision:
    """What deciding a card's part at once did: the requests decided (or counted, where more
    approvals are needed), and those skipped, with why (the clicker's own access, …)."""

    decided: tuple[ProvisioningRequest, ...]
    skipped: tuple[tuple[ProvisioningRequest, Refusal], ...] = ()


class Batches:
    def __init__(self, requests: Requests) -> None:
        self.requests = requests

    # -- resolving a list ------------------------------------------------------------------------

    async def resolve(self, typed: Sequence[str]) -> list[ResolvedEntry]:
        """Each entry as it names someone: a username equal to the directory's, or an email
        equal to the directory's (both ignoring case), never a prefix match."""
        gate = asyncio.Semaphore(RESOLVE_CONCURRENCY)

        async def one(text: str) -> ResolvedEntry:
            async with gate:
                return await self._resolve_one(text)

        resolved = await asyncio.gather(*(one(text) for text in typed))
        seen: set[str] = set()
        out = []
        for item in resolved:
            if item.entry is not None:
                key = item.entry.username.casefold()
                if key in seen:
                    item = dataclasses.replace(item, status=EntryStatus.REPEATED)
                seen.add(key)
            out.append(item)
        return out

    async def _resolve_one(self, text: str) -> ResolvedEntry:
        text = text.strip()
        by_email = "@" in text
        query = text.split("@", 1)[0] if by_email else text
        directory = self.requests.directory
        try:
            try:
                found = await shortlist(directory, (query,), limit=self.requests.search_limit)
            except DirectoryRefused as exc:
                if exc.kind is not DirectoryProblem.PROVIDER_CANNOT:
                    raise
                found = await shortlist(
                    directory, (query,), limit=self.requests.search_limit, accounts=True
                )
        except DirectoryRefused as exc:
            status = (
                EntryStatus.TOO_BROAD
                if exc.kind is DirectoryProblem.TOO_MANY_RESULTS
                else EntryStatus.UNAVAILABLE
            )
            return ResolvedEntry(text, status)
        except DirectoryError:
            return ResolvedEntry(text, EntryStatus.UNAVAILABLE)
        if by_email:
            matches = [entry for entry in found if same_email(entry.email, text)]
        else:
            matches = [entry for entry in found if entry.username.casefold() == text.casefold()]
        if not matches:
            return ResolvedEntry(text, EntryStatus.NOT_FOUND)
        if len(matches) > 1:
            return ResolvedEntry(text, EntryStatus.AMBIGUOUS)
        entry = matches[0]
        if entry.has_account:
            return ResolvedEntry(text, EntryStatus.HAS_ACCOUNT, entry)
        existing = await self.requests.store.find_active(entry.username)
        if existing is not None:
            return ResolvedEntry(text, EntryStatus.PENDING, entry, existing)
        return ResolvedEntry(text, EntryStatus.READY, entry)

    # -- filing ----------------------------------------------------------------------------------

    async def file(
        self,
        *,
        requester_id: str,
        usernames: Sequence[str],
        justification: str,
        role: str | None = None,
    ) -> BatchFiled | NotFiled:
        """File a request for each directory entry named (usernames that came back from the
        requester's client: each is read from the directory again, as a single request is),
        all in one transaction, sharing cards. NotFiled when the form itself is refused."""
        requests = self.requests
        checked = await requests.checked_form(justification, role)
        if isinstance(checked, NotFiled):
            return checked
        justification, role = checked
        unique = list(dict.fromkeys(name for name in usernames if name))[:MAX_BATCH]
        refused: list[tuple[str, FileOutcome]] = []
        news: list[NewRequest] = []
        for username in unique:
            prepared = await requests.prepare_new_account(
                requester_id, username, justification, role
            )
            if isinstance(prepared, NewRequest):
                if prepared.person.username.casefold() in {
                    new.person.username.casefold() for new in news
                }:
                    continue  # two names for one person: asked for once
                subject_id, link = await requests.link_subject(prepared.person.email)
                news.append(dataclasses.replace(prepared, subject_id=subject_id, subject_link=link))
            else:
                refused.append((username, prepared))
        while news:
            batch_id = requests.id_factory()
            shaped = _in_parts(news, batch_id)
            outbox = {
                new.request_id: [OutboxItem(OutboxKind.POST_CARD)]
                for new in shaped
                if new.card_request_id is None
            }
            try:
                filed = await requests.store.create_batch(shaped, outbox=outbox)
            except DuplicateRequestError as exc:
                # Someone asked for one of them meanwhile: file the others.
                taken = exc.existing.username
                refused.append((taken, Duplicate(exc.existing)))
                news = [new for new in news if new.person.username != taken]
                continue
            for request in filed:
                requests.metrics.request_filed(request.kind.value)
            log.info(
                "batch %s: %d requests filed by %s (%d not)",
                batch_id,
                len(filed),
                requester_id,
                len(refused),
            )
            requests.notify_outbox()
            return BatchFiled(tuple(filed), tuple(refused))
        return BatchFiled((), tuple(refused))

    # -- deciding a part at once -----------------------------------------------------------------

    async def approve_all(self, batch_id: str, part: int, approver_id: str) -> BatchDecision:
        """Approve every pending request of the part the approver may decide (each through the
        same gate and exactly-once path as a click on it); the others are skipped, with why."""
        return await self._each(batch_id, part, approver_id, reason=None)

    async def deny_all(
        self, batch_id: str, part: int, approver_id: str, reason: str
    ) -> BatchDecision:
        return await self._each(batch_id, part, approver_id, reason=reason)

    async def _each(
        self, batch_id: str, part: int, approver_id: str, *, reason: str | None
    ) -> BatchDecision:
        members = await self.requests.store.list_batch(batch_id, part)
        decided: list[ProvisioningRequest] = []
        skipped: list[tuple[ProvisioningRequest, Refusal]] = []
        for member in members:
            if member.state is not RequestState.PENDING:
                continue
            if reason is None and member.raised_by:
                # An approver asked for a higher role than the card's: that is a question of
                # its own, answered on its own confirmation, never by Approve all.
                skipped.append((member, Refusal.ROLE_CHANGED))
                continue
            if reason is None:
                outcome = await self.requests.approve(member.id, approver_id)
            else:
                outcome = await self.requests.deny(member.id, approver_id, reason)
            if isinstance(outcome, Refused):
                skipped.append((outcome.request or member, outcome.reason))
            elif isinstance(outcome, Decided | ApprovalCounted | RoleRaised):
                decided.append(outcome.request)
        return BatchDecision(tuple(decided), tuple(skipped))


def _in_parts(news: Sequence[NewRequest], batch_id: str) -> list[NewRequest]:
    """The requests with their batch, part, and the request holding their part's card (the
    first of each part)."""
    shaped = []
    for index, new in enumerate(news):
        part = index // PART_SIZE
        holder = news[part * PART_SIZE].request_id
        shaped.append(
            dataclasses.replace(
                new,
                batch_id=batch_id,
                batch_part=part,
                card_request_id=None if holder == new.request_id else holder,
            )
        )
    return shaped
