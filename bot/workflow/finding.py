"""Finding people in the directory exactly: a person's own entry from their Slack profile, and
the entries a list of usernames and emails names. Connect's search matches prefixes of
usernames and names (`hui1.li` also finds `hui1.liu`), so what it returns is only a shortlist:
an entry is kept when its username or email equals what was asked, never because it matched.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.workflow.models import DirectoryEntry, SlackIdentity
from bot.workflow.ports import Directory, DirectoryProblem, DirectoryRefused


class FindProblem(StrEnum):
    NO_EMAIL = "no_email"  # the Slack profile shows no email
    SLACK_UNAVAILABLE = "slack_unavailable"
    CONNECT_UNAVAILABLE = "connect_unavailable"
    NOT_FOUND = "not_found"  # no directory entry has that email
    SEVERAL = "several"  # more than one entry has it
    NO_DIRECTORY = "no_directory"  # the login provider has no directory search, no account yet


@dataclass(frozen=True, slots=True)
class OwnEntry:
    """The requester's own directory entry (without its ticket: filing reads it again), or why
    there is none. `email` is the Slack email it was looked for by."""

    entry: DirectoryEntry | None = None
    problem: FindProblem | None = None
    email: str = ""


def same_email(one: str, other: str) -> bool:
    return bool(one.strip()) and one.strip().casefold() == other.strip().casefold()


def queries_for(identity: SlackIdentity) -> tuple[str, ...]:
    """What to search for to shortlist the entries that may carry this email: its local part
    (usually the username), and the first and last names."""
    local = identity.email.split("@", 1)[0]
    seen: dict[str, None] = {}
    for query in (local, identity.first_name, identity.last_name):
        query = query.strip()
        if query and query.casefold() not in {q.casefold() for q in seen}:
            seen[query] = None
    return tuple(seen)


async def shortlist(
    directory: Directory, queries: Iterable[str], *, limit: int, accounts: bool = False
) -> list[DirectoryEntry]:
    """Every entry the queries find, each once (by username), without tickets. A query Connect
    calls too broad is skipped: the others may still find the entry. Other directory errors
    propagate."""

    async def one(query: str) -> tuple[DirectoryEntry, ...]:
        try:
            if accounts:
                page = await directory.search_accounts(query, limit=limit)
            else:
                page = await directory.search(query, limit=limit)
        except DirectoryRefused as exc:
            if exc.kind is DirectoryProblem.TOO_MANY_RESULTS:
                return ()
            raise
        return page.entries

    found: dict[str, DirectoryEntry] = {}
    for entries in await asyncio.gather(*(one(query) for query in queries)):
        for entry in entries:
            found.setdefault(entry.username, dataclasses.replace(entry, temp_ticket=""))
    return list(found.values())
