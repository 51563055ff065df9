"""Search results shared between replicas: the `Directory` port with its searches cached.

Only searches are cached; the look-ups that file or settle a request always ask the directory.
Entries are stored without their tickets (nothing before filing needs one, and filing reads a
fresh one), under keys that name the directory they came from, so two deployments sharing one
Redis never show each other's people.
"""

from __future__ import annotations

from typing import Any

from bot.cache.keyed import KeyedCache, cache_key
from bot.workflow.models import Account, DirectoryCapabilities, DirectoryEntry, DirectoryPage
from bot.workflow.ports import Directory


class CachedDirectory:
    """`bot.workflow.ports.Directory`, with `search` and `search_accounts` answered from the
    cache for `ttl` seconds (`ttl` 0: not cached)."""

    def __init__(self, directory: Directory, cache: KeyedCache, *, ttl: float, scope: str) -> None:
        self.directory = directory
        self.cache = cache
        self.ttl = ttl
        # The directory's identity (the Connect server): part of every key.
        self.scope = scope

    async def search(self, prefix: str, *, limit: int) -> DirectoryPage:
        return await self.cache.get_or_compute(
            "search:" + cache_key(self.scope, prefix, limit),
            lambda: self.directory.search(prefix, limit=limit),
            ttl=self.ttl,
            dump=dump_page,
            load=load_page,
        )

    async def find_entry(self, username: str) -> DirectoryEntry | None:
        return await self.directory.find_entry(username)

    async def create_account(self, temp_ticket: str) -> Account:
        return await self.directory.create_account(temp_ticket)

    async def find_account(self, username: str) -> Account | None:
        return await self.directory.find_account(username)

    async def search_accounts(self, prefix: str, *, limit: int) -> DirectoryPage:
        return await self.cache.get_or_compute(
            "accounts:" + cache_key(self.scope, prefix, limit),
            lambda: self.directory.search_accounts(prefix, limit=limit),
            ttl=self.ttl,
            dump=dump_page,
            load=load_page,
        )

    async def capabilities(self) -> DirectoryCapabilities:
        return await self.directory.capabilities()

    async def key_role(self) -> str | None:
        return await self.directory.key_role()

    async def get_account(self, guid: str) -> Account | None:
        return await self.directory.get_account(guid)

    async def set_role(self, guid: str, role: str) -> Account:
        return await self.directory.set_role(guid, role)

    async def set_locked(self, guid: str, locked: bool) -> None:
        await self.directory.set_locked(guid, locked)


_ENTRY_FIELDS = ("username", "first_name", "last_name", "email", "guid", "user_role", "locked")


def dump_page(page: DirectoryPage) -> dict[str, Any]:
    """JSON for the cache: every field but the ticket."""
    return {
        "entries": [
            {name: getattr(entry, name) for name in _ENTRY_FIELDS} for entry in page.entries
        ],
        "total": page.total,
    }


def load_page(stored: Any) -> DirectoryPage:
    """A cached page back; anything malformed raises (the cache then asks the directory)."""
    entries = []
    for item in stored["entries"]:
        values = {name: item.get(name) for name in _ENTRY_FIELDS}
        if not isinstance(values["username"], str) or not values["username"]:
            raise ValueError("a cached entry without a username")
        entries.append(
            DirectoryEntry(
                username=values["username"],
                first_name=str(values["first_name"] or ""),
                last_name=str(values["last_name"] or ""),
                email=str(values["email"] or ""),
                guid=values["guid"] if isinstance(values["guid"], str) else None,
                user_role=values["user_role"] if isinstance(values["user_role"], str) else None,
                locked=values["locked"] is True,
            )
        )
    return DirectoryPage(entries=tuple(entries), total=int(stored["total"]))
